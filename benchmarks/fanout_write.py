"""The fan-out's write pass alone: CPU per socket write, C pass vs the Python loop.

One process, N loopback TCP connections whose server sides are event loop
transports (uvloop when installed) held by ``room.Viewer`` records, as in the
node.  Each round writes one ~300-byte batch to every viewer with each way of
writing, alternating, and the client sides are drained between passes (not
timed).  Printed: the thread's CPU per write of each way, and the median ratio.

    python -m benchmarks.fanout_write --sockets 8000 --rounds 10

Ways: ``python`` is ``FanOut.write`` without the C pass (every write through
the transport: the relay without the extension); ``c`` is ``FanOut.write``
with ``broadcaster/chat/_sendmany.c``.  ``--order`` says which viewers one pass
writes, as a tick does: ``all`` (every viewer, in connection order), ``strided``
(an eighth of the viewers, 1 in 8 apart: groups filled one joiner each in turn)
or ``runs`` (an eighth, in runs of 32 consecutive connections: ``join_run``).
The sockets' kernel objects are allocated in connection order, so the order
says how much memory a pass touches.  Keep the socket count under the open-file
limit (two fds per connection).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broadcaster.bus import MemoryBus  # noqa: E402
from broadcaster.chat import sendmany  # noqa: E402
from broadcaster.chat.fanout import FanOut  # noqa: E402
from broadcaster.chat.relay import ChatRelay, Viewer  # noqa: E402


class Quiet(asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        pass


def passes(viewers: list[Viewer], order: str) -> list[list[Viewer]]:
    """The viewer lists one round writes, one per pass."""
    if order == "all":
        return [viewers]
    if order == "strided":
        return [viewers[k::8] for k in range(8)]
    return [[v for i, v in enumerate(viewers) if (i // 32) % 8 == k] for k in range(8)]


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    readers: list[socket.socket] = []
    viewers: list[Viewer] = []
    for i in range(args.sockets):
        reader = socket.create_connection(listener.getsockname())
        reader.setblocking(False)
        server_side, _ = listener.accept()
        transport, _ = await loop.connect_accepted_socket(Quiet, server_side)
        readers.append(reader)
        viewers.append(Viewer(None, transport, "b", f"v{i}", "bench", None, None, None,  # type: ignore[arg-type]
                              fd=sendmany.direct_fd(transport)))
    listener.close()
    relay = ChatRelay(MemoryBus(), "bench")
    batch = b"\x81\x7e\x01\x26" + b"x" * 294
    through = FanOut(relay.settings, relay.metrics, relay.room_sync, relay.leave, c_pass=False)
    ways = {"python": through.write, "c": relay.fanout.write}
    if sendmany.send_batch is None:
        print("broadcaster.chat._sendmany is not built: only the Python loop is measured")
        del ways["c"]

    def drain() -> None:
        for reader in readers:
            try:
                while reader.recv(1 << 16):
                    pass
            except BlockingIOError:
                pass

    per_write: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(args.rounds):
        for way, write in ways.items():
            spent, writes = 0.0, 0
            for part in passes(viewers, args.order):
                started = time.thread_time()
                write(part, batch)
                spent += time.thread_time() - started
                writes += len(part)
                await asyncio.sleep(0.005)
            per_write[way].append(spent / writes * 1e6)
            await asyncio.sleep(0.02)
            drain()
            await asyncio.sleep(0.02)
    loop_name = type(loop).__module__.split(".")[0]
    print(f"fan-out write pass: {args.sockets} sockets, order={args.order}, {args.rounds} rounds, {loop_name} loop")
    for way, figures in per_write.items():
        print(f"  {way:6s} median {statistics.median(figures):5.2f} µs CPU per write "
              f"(rounds {min(figures):.2f}–{max(figures):.2f})")
    if "c" in per_write:
        ratios = [p / c for p, c in zip(per_write["python"], per_write["c"])]
        print(f"  python / c: median ratio {statistics.median(ratios):.2f}")
    for viewer in viewers:
        viewer.transport.abort()
    for reader in readers:
        reader.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--order", choices=["all", "strided", "runs"], default="all")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
