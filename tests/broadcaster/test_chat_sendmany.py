"""The fan-out's C write loop (broadcaster/chat/_sendmany.c) and the relay around it.

``send_batch`` checks each viewer's transport and sends one buffer on the real
loopback sockets of those whose transport is open and holds nothing (plain TCP
only); it reports the others and every socket that took less than all, and the
relay writes those through their transports, so a viewer's byte stream is the
same whichever path wrote it.  With CI=true a missing extension fails (conftest turns the skip into
a failure): CI installs gcc and the Python headers to build it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from broadcaster.chat import protocol as proto
from broadcaster.chat import sendmany
from broadcaster.chat import fanout as fanout_module
from broadcaster.chat.relay import new_comment
from tests.broadcaster.chat_support import IN_CI, ChatNode, wait_for
from tests.broadcaster.test_chat_slow_viewer import _stalled_viewer
from tests.support.tls import self_signed


@pytest.fixture
def send_batch() -> sendmany.SendBatch:
    if sendmany.send_batch is None:
        reason = "broadcaster.chat._sendmany is not built (no C compiler when onair was installed)"
        if IN_CI:
            pytest.fail(reason)  # CI installs gcc and the Python headers: the extension must be there
        pytest.skip(reason)
    return sendmany.send_batch


@dataclass(eq=False)
class Peer:
    """What send_batch reads of a viewer: ``closed``, ``transport``, ``fd`` (as room.Viewer)."""
    transport: asyncio.Transport
    fd: int
    reader: socket.socket
    closed: bool = False


class Quiet(asyncio.Protocol):
    pass


@pytest.fixture
async def peers() -> AsyncIterator[Callable[..., Awaitable[Peer]]]:
    """Makes loopback TCP connections whose server side is an event loop transport."""
    made: list[Peer] = []
    loop = asyncio.get_running_loop()

    async def make(sndbuf: int = 0, rcvbuf: int = 0, direct: bool = True) -> Peer:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            reader = socket.socket()
            if rcvbuf:
                reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            reader.connect(listener.getsockname())
            server, _ = listener.accept()
        if sndbuf:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        transport, _ = await loop.connect_accepted_socket(Quiet, server)
        reader.settimeout(5)
        peer = Peer(transport, sendmany.direct_fd(transport) if direct else -1, reader)  # type: ignore[arg-type]
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.transport.abort()
        peer.reader.close()


async def test_send_batch_sends_on_every_socket_with_nothing_queued(send_batch: sendmany.SendBatch, peers: Any) -> None:
    group = [await peers() for _ in range(20)]
    assert all(p.fd >= 0 for p in group)
    data = b'\x81\x0c{"type":"x"}'
    assert send_batch(group, data) == ([], [], [])
    for peer in group:
        assert peer.reader.recv(1024) == data
    assert send_batch([], data) == ([], [], [])


async def test_send_batch_leaves_closing_queued_and_undirected_transports_to_the_caller(
        send_batch: sendmany.SendBatch, peers: Any) -> None:
    plain, dropped, closing = [await peers() for _ in range(3)]
    undirected = await peers(direct=False)  # (as a TLS viewer's: direct_fd gave -1)
    dropped.closed = True  # (the relay's mark on a viewer it dropped as too slow)
    closing.transport.close()
    # a transport that holds bytes: its socket's buffers are full
    filler = await peers(sndbuf=4096, rcvbuf=4096)
    while filler.transport.get_write_buffer_size() == 0:
        filler.transport.write(os.urandom(1 << 16))
    held = filler.transport.get_write_buffer_size()
    gone, waiting, short = send_batch([plain, dropped, closing, undirected, filler], b"batch")
    assert gone == [dropped, closing]
    assert waiting == [(undirected, 0), (filler, held)]
    assert short == []
    assert plain.reader.recv(64) == b"batch"
    undirected.reader.settimeout(0.2)
    with pytest.raises(TimeoutError):
        undirected.reader.recv(64)  # not written: the caller writes it through its transport


async def test_send_batch_reports_what_a_socket_did_not_take(send_batch: sendmany.SendBatch, peers: Any) -> None:
    full = await peers(sndbuf=4096, rcvbuf=4096)
    roomy = await peers()
    data = os.urandom(200_000)
    # the small socket takes part of 200 kB; the roomy one after it is written all the same
    gone, queued, short = send_batch([full, roomy], data)
    assert gone == [] and queued == []
    assert short[0][0] is full and 0 < short[0][1] < len(data)
    assert all(peer is roomy for peer, _ in short[1:])
    taken = short[0][1]
    # offered the rest until its buffers are full: then it takes nothing (EAGAIN), reported as 0 sent
    for _ in range(100):
        ((peer, sent),) = send_batch([full], data[taken:])[2]
        if sent == 0:
            break
        taken += sent
    else:
        pytest.fail("a socket nobody reads kept taking data")
    got = b""
    while len(got) < taken:
        got += full.reader.recv(1 << 16)
    assert got == data[:taken]


async def test_send_batch_reports_failed_sockets_and_goes_on(send_batch: sendmany.SendBatch, peers: Any) -> None:
    reset, good = await peers(), await peers()
    reset.transport.pause_reading()  # (so the event loop does not see the reset first and close)
    # the peer resets the connection (SO_LINGER 0): a send on it fails with ECONNRESET
    reset.reader.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    reset.reader.close()
    await asyncio.sleep(0.1)
    assert send_batch([reset, good], b"after") == ([], [], [(reset, 0)])
    assert good.reader.recv(64) == b"after"


def test_send_batch_refuses_arguments_of_the_wrong_kind(send_batch: sendmany.SendBatch) -> None:
    with pytest.raises(TypeError, match="list"):
        send_batch((), b"data")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="exactly 2"):
        send_batch([])  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        send_batch([object()], b"data")  # not a viewer


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = self_signed(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    client.check_hostname = False
    return server, client


async def test_direct_fd_only_for_plain_tcp_sockets(send_batch: sendmany.SendBatch, tmp_path: Path,
                                                    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    accepted: list[asyncio.BaseTransport] = []

    class Keep(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.append(transport)

    loop = asyncio.get_running_loop()
    server_tls, client_tls = tls_pair
    plain = await loop.create_server(Keep, "127.0.0.1", 0)
    tls = await loop.create_server(Keep, "127.0.0.1", 0, ssl=server_tls)
    unix = await loop.create_unix_server(Keep, str(tmp_path / "s.sock"))
    clients = []
    try:
        clients.append((await loop.create_connection(asyncio.Protocol, "127.0.0.1", plain.sockets[0].getsockname()[1]))[0])
        clients.append((await loop.create_connection(asyncio.Protocol, "127.0.0.1", tls.sockets[0].getsockname()[1],
                                                     ssl=client_tls, server_hostname="127.0.0.1"))[0])
        clients.append((await loop.create_unix_connection(asyncio.Protocol, str(tmp_path / "s.sock")))[0])
        await wait_for(lambda: len(accepted) == 3, 5)
        by_kind = {}
        for transport in accepted:
            sock = transport.get_extra_info("socket")
            kind = "unix" if sock.family == socket.AF_UNIX else "tls" if transport.get_extra_info("sslcontext") else "tcp"
            by_kind[kind] = (transport, sock.fileno())
        assert sendmany.direct_fd(by_kind["tcp"][0]) == by_kind["tcp"][1] >= 0
        # bytes sent on a TLS transport's socket would skip the encryption
        assert sendmany.direct_fd(by_kind["tls"][0]) == -1
        assert sendmany.direct_fd(by_kind["unix"][0]) == -1
    finally:
        for transport in clients + accepted:
            transport.close()
        for server in (plain, tls, unix):
            server.close()


def _frames(stream: bytes) -> tuple[list[dict[str, Any]], int]:
    """The whole server frames (unmasked text) at the start of a raw byte stream, and
    the bytes they span; every frame must start where the previous one ended."""
    out, at = [], 0
    while len(stream) - at >= 2:
        assert stream[at] == 0x81, f"frame boundary lost at byte {at}: {stream[at:at + 8]!r}"
        n, start = stream[at + 1] & 0x7F, at + 2
        if n == 126:
            if len(stream) < start + 2:
                break
            n, start = struct.unpack_from("!H", stream, start)[0], start + 2
        elif n == 127:
            if len(stream) < start + 8:
                break
            n, start = struct.unpack_from("!Q", stream, start)[0], start + 8
        if len(stream) < start + n:
            break
        out.append(json.loads(stream[start:start + n]))
        at = start + n
    return out, at


@pytest.mark.parametrize("mode", ["direct", "transport", "python"])
async def test_a_socket_that_falls_behind_gets_every_comment_once_in_order(
        mode: str, send_batch: sendmany.SendBatch, tmp_path: Path, aiohttp_client: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A viewer's kernel buffer fills: a batch is taken in part, its transport queues the rest
    and the batches after it; when the viewer reads again its stream is whole and in order.
    Modes: the C pass sending on sockets, the C pass with ``direct_send`` off (transports
    write), and the relay's Python loop (an install without the extension)."""
    if mode == "python":
        monkeypatch.setattr(fanout_module, "send_batch", None)
        monkeypatch.setattr(sendmany, "send_batch", None)
    direct_send = mode == "direct"
    node = await ChatNode("memory", tmp_path, direct_send=direct_send).start(aiohttp_client)
    relay = node.relay
    b = await node.create_broadcast()
    sock = await _stalled_viewer(node.client.port, b["id"])
    await wait_for(lambda: b["id"] in relay.rooms and len(relay.rooms[b["id"]].viewers) == 1, 5)
    (viewer,) = relay.rooms[b["id"]].viewers
    assert (viewer.fd >= 0) is direct_send
    author = {"id": "v_host", "name": "host"}
    posted = 0
    # until bytes wait on the transport (the socket no longer takes a whole batch) ...
    while viewer.transport.get_write_buffer_size() == 0:
        await relay.host.publish_comment(b["id"], new_comment(author, f"{posted} " + "y" * 400, False))
        posted += 1
        if posted % 20 == 0:
            await asyncio.sleep(0.15)  # let a few batches go out
        assert posted < 5000, "the socket never filled"
    # ... and some more batches queue behind them
    for _ in range(30):
        await relay.host.publish_comment(b["id"], new_comment(author, f"{posted} " + "z" * 400, False))
        posted += 1
    await asyncio.sleep(0.5)
    assert not viewer.closed and viewer.transport.get_write_buffer_size() > 0
    # The viewer empties its kernel buffers while the transport still holds bytes (nothing
    # yields in between, so the loop cannot flush them): a batch written now has room in the
    # socket, and must still go behind the transport's bytes, not ahead of them.
    stream = b""  # (the upgrade response was read by _stalled_viewer: frames from the first byte)
    while True:
        try:
            stream += sock.recv(1 << 16)
        except BlockingIOError:
            break
    marker = proto.event("marker", after=posted)
    relay.fanout.write([viewer], proto.text_frame(marker))
    for _ in range(5):
        await relay.host.publish_comment(b["id"], new_comment(author, f"{posted} " + "w" * 400, False))
        posted += 1
    loop = asyncio.get_running_loop()
    events: list[dict[str, Any]] = []
    deadline = loop.time() + 15
    try:
        while sum(e["type"] == "comment" for e in events) < posted:
            assert loop.time() < deadline, f"{len(events)} events arrived, {posted} comments posted"
            frames, used = _frames(stream)
            stream = stream[used:]
            events += frames
            try:
                stream += await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 1)
            except asyncio.TimeoutError:
                continue
    finally:
        sock.close()
    shown = [e for e in events if e["type"] in ("comment", "marker")]
    order = [e["after"] if e["type"] == "marker" else int(e["text"].split()[0]) for e in shown]
    marked = posted - 5
    assert order == list(range(marked)) + [marked] + list(range(marked, posted))
    seqs = [e["seq"] for e in shown if e["type"] == "comment"]
    assert seqs == sorted(set(seqs))
