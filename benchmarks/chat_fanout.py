"""Chat fan-out benchmark: onair's relay vs socket.io 4 + @socket.io/redis-adapter.

N viewers on one node of each server; a few hundred of them are *instrumented*
(they parse every frame and record the delivery latency of each comment, whose
send time travels in its text: one clock, one machine), the rest are cheap
*sinks* that complete the WebSocket handshake and then only count bytes, read
by one sweep over their sockets every 50 ms (``--sink-drain-interval``): a
sink waiting on readiness would be woken inside the server's ``write`` call,
a loopback artefact charged to the server that runs before 2026-11-29 carried.
Senders post R comments/s and X reactions/s, spread evenly over time (each
sender's schedule is offset by its share of an interval; runs before
2026-11-29's last ones had every sender post at the same instants, in bursts
of one comment per sender).  Every load generator runs in its own process (see
../shared/BENCHMARKING.md); the server's CPU is read from /proc over the
probe's whole window (sender warm-up and drain included: the figure older runs
reported) and over the load alone, with the kernel's share of the latter.
Both servers use the same Redis.

    python -m benchmarks.chat_fanout --viewers 1000 --comments 50 --reactions 200 --duration 10
    python -m benchmarks.chat_fanout --viewers 10000 --targets onair,socketio
    python -m benchmarks.chat_fanout --viewers 1000 --targets onair --transcode 2

``--transcode N`` first puts the node under test to work: N broadcasts, each
published at 1080p30 with ffmpeg ``-re`` and transcoded with the default
ladder by the node's worker processes for the whole run (issue 6: the chat's
latency while the node transcodes).  Server CPU is the node process alone;
its workers are reported apart, with their realtime factors.

socket.io reference: one Node process, ``io.to(room).emit`` per comment (what a
socket.io chat does), reactions summed per 100 ms like onair's.  node_modules
go to a temporary folder the benchmark creates (never committed).

``bare`` reference (``--targets onair,bare``): the loop the issue gives for
orientation, "aiohttp + uvloop, batch per 100 ms, one pre-built frame written to
every transport" (uvloop when installed, as for onair's node), with no
history, moderation, Redis or slow-viewer checks.  It calibrates what socket
writes cost on the machine of the run: the sinks count the writes that reach
them during the load, and every target is reported as server CPU per write
(µs) besides its CPU in cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import (free_port, machine, median, own_user_system_seconds,  # noqa: E402
                                 tree_cpu_seconds)
from benchmarks._transcode_load import TranscodeLoad, make_source  # noqa: E402

ADMIN = "admin_bench_token_0123456789"

# Starts a node with the chat relay even before create_app calls setup_chat itself.
ONAIR_LAUNCHER = """
import json
import sys
import broadcaster.app as node_app
from broadcaster.chat import ChatSettings, setup_chat
EXTRA = json.loads(sys.argv.pop(1))
_create_app = node_app.create_app
def create_app(config):
    app = _create_app(config)
    # Sinks only count bytes and never answer pings: no heartbeat in the benchmark.
    setup_chat(app, settings=ChatSettings(heartbeat=None, **EXTRA))
    return app
node_app.create_app = create_app
from broadcaster.cli import main
sys.exit(main(sys.argv[1:]))
"""

SOCKETIO_SERVER = r"""
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");
const port = +process.argv[2], redisUrl = process.argv[3];
(async () => {
  const pub = createClient({ url: redisUrl }); const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const io = new Server({ adapter: createAdapter(pub, sub), transports: ["websocket"],
                          perMessageDeflate: false, pingInterval: 600000, pingTimeout: 600000,
                          maxHttpBufferSize: 16384 });
  let seq = 0, n = 0; const totals = {}; let delta = {};
  io.on("connection", (socket) => {
    socket.join("b");
    const name = socket.handshake.query.name || "guest";
    socket.on("comment", (c) => {
      if (!c || typeof c.text !== "string" || c.text.length > 500) return;
      io.to("b").emit("comment", { seq: ++seq, id: "c" + (++n), ts: Date.now(),
                                   author: { id: socket.id, name }, text: c.text, question: !!c.question });
    });
    socket.on("react", (r) => { if (r && r.kind) delta[r.kind] = (delta[r.kind] || 0) + 1; });
  });
  setInterval(() => {
    if (!Object.keys(delta).length) return;
    for (const k in delta) totals[k] = (totals[k] || 0) + delta[k];
    io.to("b").emit("reactions", { counts: delta, totals }); delta = {};
  }, 100);
  io.listen(port);
  console.log("ready");
})();
"""


BARE_SERVER = r"""
import asyncio, json, sys, time
from aiohttp import web
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass

def frame(payload):
    n = len(payload)
    head = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
    return head + payload

transports, pending, state = set(), [], {"seq": 0}

async def ws_handler(request):
    ws = web.WebSocketResponse(heartbeat=None, max_msg_size=16384)
    await ws.prepare(request)
    transports.add(request.transport)
    try:
        async for msg in ws:
            doc = json.loads(msg.data)
            if doc.get("type") == "comment":
                state["seq"] += 1
                pending.append(json.dumps({"type": "comment", "seq": state["seq"], "id": "c%d" % state["seq"],
                                           "ts": int(time.time() * 1000), "author": {"id": "a", "name": "a"},
                                           "text": doc["text"]}).encode())
    finally:
        transports.discard(request.transport)
    return ws

async def fan_out(app):
    async def loop():
        while True:
            await asyncio.sleep(0.1)
            if pending:
                batch = b"".join(frame(p) for p in pending)
                pending.clear()
                for transport in list(transports):
                    if not transport.is_closing():
                        transport.write(batch)
    task = asyncio.create_task(loop())
    yield
    task.cancel()

async def healthz(request):
    return web.Response(text="ok")

app = web.Application()
app.router.add_get("/ws/{id}", ws_handler)
app.router.add_get("/healthz", healthz)
app.cleanup_ctx.append(fan_out)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


# --- wire helpers -------------------------------------------------------------------------

def masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
    return head + mask + body


def ws_path(target: str, broadcast_id: str, name: str) -> str:
    if target != "socketio":  # onair, and bare (which speaks onair's messages)
        return f"/ws/{broadcast_id}"
    return f"/socket.io/?EIO=4&transport=websocket&name={name}"


def first_message(target: str, name: str) -> bytes:
    if target != "socketio":
        return json.dumps({"type": "hello", "name": name}).encode()
    return b"40"  # Engine.IO message + Socket.IO CONNECT to "/"


# --- sinks: handshake, then count bytes ---------------------------------------------------

class Sink(asyncio.Protocol):
    def __init__(self, request: bytes, hello: bytes, ready: asyncio.Future[None]) -> None:
        self.request, self.hello, self.ready = request, hello, ready
        self.head = b""
        self.upgraded = False
        self.bytes = 0
        #: data_received calls after the upgrade: about one per server write that reached an idle socket
        self.reads = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            self.bytes += len(data)
            self.reads += 1
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return
        if not self.head.startswith(b"HTTP/1.1 101"):
            if not self.ready.done():
                self.ready.set_exception(RuntimeError(self.head[:80].decode(errors="replace")))
            return
        self.upgraded = True
        self.bytes += len(self.head) - end - 4
        self.transport.write(masked_text(self.hello))  # type: ignore[attr-defined]
        if not self.ready.done():
            self.ready.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before upgrade"))


def drain_periodically(fds: dict[int, Sink], interval: float, stop: threading.Event) -> None:
    """Read whatever arrived on each sink socket every ``interval`` seconds, never waiting on readiness.

    On loopback the receive side of TCP runs inside the server's ``write``: the data is queued on
    the sink's socket and whoever waits on it is woken there and then.  A sink that waits in
    ``epoll_wait`` (or merely has its socket in an epoll set) has its wake-up charged to the
    server, a cost no viewer on another machine puts on it.  So the sockets are in no epoll set:
    one non-blocking read of each per sweep.  A socket that received two writes within one
    sweep counts one read."""
    buffer = bytearray(1 << 18)
    readv = os.readv
    open_fds = list(fds)
    while not stop.is_set():
        time.sleep(interval)
        still_open = []
        for fd in open_fds:
            try:
                n = readv(fd, [buffer])
            except BlockingIOError:
                still_open.append(fd)
                continue
            except OSError:
                n = 0
            sink = fds[fd]
            if n == 0:
                sink.closed = True
                continue
            sink.bytes += n
            sink.reads += 1
            still_open.append(fd)
        open_fds = still_open


async def run_sinks(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    sinks: list[Sink] = []
    for start in range(0, args.count, 250):
        batch = []
        for i in range(start, min(args.count, start + 250)):
            key = base64.b64encode(os.urandom(16)).decode()
            path = ws_path(args.target, args.broadcast, f"sink{i}")
            request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
            ready: asyncio.Future[None] = loop.create_future()
            sink = Sink(request, first_message(args.target, f"sink{i}"), ready)
            sinks.append(sink)
            batch.append((loop.create_connection(lambda s=sink: s, "127.0.0.1", args.port), ready))
        await asyncio.gather(*(c for c, _ in batch))
        await asyncio.gather(*(r for _, r in batch))
    drainer: threading.Thread | None = None
    stop = threading.Event()
    if args.sink_drain_interval > 0:
        fds: dict[int, Sink] = {}
        for sink in sinks:
            sink.transport.pause_reading()  # type: ignore[attr-defined]  (the drain thread reads from now on)
            fds[sink.transport.get_extra_info("socket").fileno()] = sink
        drainer = threading.Thread(target=drain_periodically, args=(fds, args.sink_drain_interval, stop), daemon=True)
        drainer.start()
    print("ready", flush=True)
    # Each line on stdin asks for the reads so far (the orchestrator marks the load's start and
    # end: the server's writes that reached the sinks meanwhile); EOF stops and reports.
    while await loop.run_in_executor(None, sys.stdin.readline):
        print(json.dumps({"reads": sum(s.reads for s in sinks)}), flush=True)
    stop.set()
    if drainer is not None:
        drainer.join()
    counts = sorted(s.bytes for s in sinks)
    reads = sorted(s.reads for s in sinks)
    print(json.dumps({"sinks": len(sinks), "bytes_min": counts[0], "bytes_median": counts[len(counts) // 2],
                      "reads_median": reads[len(reads) // 2],
                      "closed": sum(s.closed for s in sinks)}), flush=True)


# --- probe: instrumented viewers + senders -----------------------------------------------------

async def run_probe(args: argparse.Namespace) -> None:
    import aiohttp

    base = f"ws://127.0.0.1:{args.port}"
    latencies: list[float] = []
    received: list[set[str]] = []
    rx_bytes: list[int] = []
    stop = asyncio.Event()

    def decode(raw: str) -> tuple[str, Any] | None:
        if args.target != "socketio":
            doc = json.loads(raw)
            return doc.get("type"), doc
        if raw.startswith("42"):
            name, doc = json.loads(raw[2:])
            return name, doc
        return None

    async def viewer(session: aiohttp.ClientSession, i: int, instrumented: bool) -> None:
        ws = await session.ws_connect(base + ws_path(args.target, args.broadcast, f"probe{i}"), max_msg_size=0,
                                      autoping=True)
        await ws.send_str(first_message(args.target, f"probe{i}").decode())
        mine: set[str] = set()
        count = 0
        if instrumented:
            received.append(mine)
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                count += len(msg.data) + 2
                if not instrumented:
                    continue
                now = time.time()
                if args.target == "socketio" and msg.data == "2":
                    await ws.send_str("3")
                    continue
                decoded = decode(msg.data)
                if decoded is None:
                    continue
                kind, doc = decoded
                comments = doc.get("comments", []) if kind == "history" else [doc] if kind == "comment" else []
                for c in comments:
                    text = c.get("text", "")
                    if text.startswith("bench "):
                        _, key, sent = text.split(" ")[:3]
                        if key not in mine:
                            mine.add(key)
                            if kind == "comment":
                                latencies.append(now - float(sent))
        finally:
            if instrumented:
                rx_bytes.append(count)

    async def sender(session: aiohttp.ClientSession, i: int, comments_per_s: float, reacts_per_s: float,
                     log: list[str], go: asyncio.Event) -> None:
        ws = await session.ws_connect(base + ws_path(args.target, args.broadcast, f"sender{i}"), max_msg_size=0)
        await ws.send_str(first_message(args.target, f"sender{i}").decode())

        async def drain() -> None:
            async for msg in ws:
                if args.target == "socketio" and msg.type is aiohttp.WSMsgType.TEXT and msg.data == "2":
                    await ws.send_str("3")
        drainer = asyncio.create_task(drain())
        await go.wait()
        start = time.monotonic()
        n_c = n_r = 0
        # Sender i runs i/senders of an interval behind sender 0: together they post at an even
        # pace (50 comments/s: one every 20 ms), not in bursts of one comment from every sender.
        offset = i / args.senders
        # ordinary words: a run of one character would be (rightly) rejected as flooding by moderation
        pad = ("what a great talk, thanks for sharing this " * (args.pad // 40 + 1))[:args.pad]
        kinds = ["like", "celebrate", "love", "insightful", "curious"]
        while not stop.is_set():
            elapsed = min(time.monotonic() - start, args.duration)
            while n_c + offset < elapsed * comments_per_s:
                key = f"{i}.{n_c}"
                text = f"bench {key} {time.time():.6f} {pad}"
                payload = ({"type": "comment", "text": text} if args.target != "socketio"
                           else "42" + json.dumps(["comment", {"text": text}]))
                await ws.send_str(json.dumps(payload) if isinstance(payload, dict) else payload)
                log.append(key)
                n_c += 1
            while n_r + offset < elapsed * reacts_per_s:
                kind = kinds[n_r % 5]
                await ws.send_str(json.dumps({"type": "react", "kind": kind}) if args.target != "socketio"
                                  else "42" + json.dumps(["react", {"kind": kind}]))
                n_r += 1
            await asyncio.sleep(0.01)
        await asyncio.sleep(args.drain)
        drainer.cancel()
        await ws.close()

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = []
        for i in range(args.count):
            tasks.append(asyncio.create_task(viewer(session, i, True)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        senders = args.senders
        sent_log: list[str] = []
        print("sending", flush=True)
        t0 = time.monotonic()
        go = asyncio.Event()
        sender_tasks = [asyncio.create_task(sender(session, i, args.rate / senders, args.react_rate / senders,
                                                   sent_log, go))
                        for i in range(senders)]
        await asyncio.sleep(1.0)  # senders connected and past their hello
        # The orchestrator reads the server's CPU at these two lines: the load itself.
        print("load-start", flush=True)
        go.set()
        await asyncio.sleep(args.duration)
        stop.set()
        print("load-end", flush=True)
        sent_total = len(sent_log)
        await asyncio.gather(*sender_tasks)
        window = time.monotonic() - t0
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    delivered_min = min((len(r) for r in received), default=0)
    lat = sorted(latencies)
    print(json.dumps({
        "sent": sent_total, "instrumented": args.count, "delivered_min": delivered_min,
        "deliveries": len(lat), "p50": lat[len(lat) // 2] if lat else None,
        "p99": lat[int(len(lat) * 0.99)] if lat else None, "max": lat[-1] if lat else None,
        "bytes_per_viewer": statistics.median(rx_bytes) if rx_bytes else 0, "window": window,
        "probe_cpu": (lambda r: (r.ru_utime + r.ru_stime) / window)(resource.getrusage(resource.RUSAGE_SELF)),
    }), flush=True)


# --- orchestration ------------------------------------------------------------------------------

def start_onair(port: int, rtmp_port: int, redis_url: str, data_dir: Path, args: argparse.Namespace
                ) -> subprocess.Popen[bytes]:
    chat_settings = json.loads(args.chat_settings)
    if args.tick is not None:
        chat_settings["tick"] = args.tick
    cmd = [sys.executable, "-c", ONAIR_LAUNCHER, json.dumps(chat_settings), "serve", "--host", "127.0.0.1",
           "--http-port", str(port), "--rtmp-port", str(rtmp_port), "--data-dir", str(data_dir),
           "--admin-token", ADMIN, "--redis-url", redis_url, "--log-level", "warning",
           # every viewer here comes from 127.0.0.1 and stands for a person on a network of its own
           "--chat-sockets-per-address", "0", "--chat-joins-per-address", "0",
           "--chat-comments-per-address", "0", "--chat-reactions-per-address", "0"]
    env = dict(os.environ)
    if args.worker_nice is not None:
        env["ONAIR_WORKER_NICE"] = str(args.worker_nice)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(data_dir / "node.log", "ab"))
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def create_broadcast(port: int) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/broadcasts", method="POST",
                                 data=json.dumps({"title": "bench"}).encode(),
                                 headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    doc = json.loads(urllib.request.urlopen(req, timeout=5).read())
    # The generator sends from a few viewers at a couple of comments a second each, far above a
    # person's pace: lift the per-viewer rate limit so moderation screens every comment instead
    # of rejecting most of them (what is measured is the fan-out).
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/broadcasts/{doc['id']}/moderation/settings",
                                 method="PUT", data=json.dumps({"rate_limit_count": 1000}).encode(),
                                 headers={"Authorization": f"Bearer {doc['host_token']}",
                                          "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    return doc["id"]


def prepare_socketio(workdir: Path) -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise RuntimeError("node/npm are not installed")
    (workdir / "package.json").write_text('{"name": "onair-bench-socketio", "private": true}')
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "socket.io@4",
                    "@socket.io/redis-adapter@8", "redis@4"], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)
    script = workdir / "server.js"
    script.write_text(SOCKETIO_SERVER)
    return script


def start_socketio(script: Path, port: int, redis_url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["node", str(script), str(port), redis_url], cwd=script.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if b"ready" not in line:
        raise RuntimeError(f"socket.io server did not start: {line!r}")
    return proc


def role_cmd(role: str, target: str, port: int, broadcast: str, count: int, args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "benchmarks.chat_fanout", "--role", role, "--target", target, "--port", str(port),
            "--broadcast", broadcast, "--count", str(count), "--duration", str(args.duration),
            "--comments", str(args.comments), "--reactions", str(args.reactions), "--senders", str(args.senders),
            "--pad", str(args.pad), "--drain", str(args.drain), "--sink-drain-interval", str(args.sink_drain_interval)]


def run_one(target: str, args: argparse.Namespace, workdir: Path, script: Path | None) -> dict[str, Any]:
    port = free_port()
    data_dir = workdir / f"{target}-{port}"
    data_dir.mkdir()
    redis_client_flush(args.redis_url)
    transcode: TranscodeLoad | None = None
    if target == "onair":
        rtmp_port = free_port()
        server = start_onair(port, rtmp_port, args.redis_url, data_dir, args)
        broadcast = create_broadcast(port)
        if args.transcode:
            transcode = TranscodeLoad(port, rtmp_port, ADMIN, workdir / "source-1080p.flv", args.transcode)
    elif target == "bare":
        server = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)], cwd=workdir,
                                  stdout=subprocess.DEVNULL, stderr=open(data_dir / "bare.log", "ab"))
        wait_http(f"http://127.0.0.1:{port}/healthz", server)
        broadcast = "b"
    else:
        assert script is not None
        server = start_socketio(script, port, args.redis_url)
        broadcast = "b"
    sink_procs: list[subprocess.Popen[bytes]] = []
    try:
        if transcode is not None:
            transcode.start()
        n_sinks = max(0, args.viewers - args.instrumented)
        per = args.sink_procs
        for k in range(per):
            count = n_sinks // per + (1 if k < n_sinks % per else 0)
            if count == 0:
                continue
            proc = subprocess.Popen(role_cmd("sink", target, port, broadcast, count, args), cwd=ROOT,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            sink_procs.append(proc)
        for proc in sink_procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith(b"ready"):
                raise RuntimeError(f"sinks failed to connect: {line!r}")
        probe = subprocess.Popen(role_cmd("probe", target, port, broadcast, args.instrumented, args), cwd=ROOT,
                                 stdout=subprocess.PIPE)
        assert probe.stdout is not None
        assert probe.stdout.readline().startswith(b"sending")

        def sink_reads() -> int:
            total = 0
            for proc in sink_procs:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(b"mark\n")
                proc.stdin.flush()
            for proc in sink_procs:
                assert proc.stdout is not None
                total += json.loads(proc.stdout.readline())["reads"]
            return total

        def sample() -> tuple[float, float, float, float, float]:
            # (node process, node tree incl. transcode workers, sinks, clock, node process in the kernel)
            user, kernel = own_user_system_seconds(server.pid)
            return (user + kernel, tree_cpu_seconds(server.pid),
                    sum(tree_cpu_seconds(p.pid) for p in sink_procs), time.monotonic(), kernel)
        window0 = sample()
        assert probe.stdout.readline().startswith(b"load-start")
        load0 = sample()
        reads0 = sink_reads()
        assert probe.stdout.readline().startswith(b"load-end")
        load1 = sample()
        reads1 = sink_reads()
        loadavg = os.getloadavg()[0]
        factors = transcode.realtime_factors() if transcode is not None else []
        out = probe.stdout.read()
        window1 = sample()
        probe.wait()
        result = json.loads(out.strip().splitlines()[-1])
        sink_stats = []
        for proc in sink_procs:
            out2, _ = proc.communicate(b"", timeout=60)
            sink_stats.append(json.loads(out2.strip().splitlines()[-1]))
        span, load_span = window1[3] - window0[3], load1[3] - load0[3]
        # The server process alone (transcode workers, its children, apart), over the probe's whole
        # window (sender warm-up and drain included: the figure earlier runs reported) and over the load.
        result["server_cpu"] = (window1[0] - window0[0]) / span
        result["server_cpu_load"] = (load1[0] - load0[0]) / load_span
        result["server_kernel_share"] = (load1[4] - load0[4]) / max(1e-9, load1[0] - load0[0])
        result["workers_cpu_load"] = ((load1[1] - load1[0]) - (load0[1] - load0[0])) / load_span
        result["sink_cpu"] = (window1[2] - window0[2]) / span
        # Writes that reached the sinks during the load (a write to an idle socket is one read;
        # two writes read as one are counted once, so this errs low): the fan-out's unit of cost.
        # The sinks are n_sinks of the viewers; every viewer gets the same batches.
        result["writes_per_s"] = (reads1 - reads0) / load_span * args.viewers / max(1, n_sinks)
        result["cpu_us_per_write"] = result["server_cpu_load"] / max(1e-9, result["writes_per_s"]) * 1e6
        result["realtime_factors"] = factors
        result["loadavg"] = loadavg  # the machine's 1-min load average at the end of the load (shared machines)
        if target == "onair":
            result["server_metrics"] = onair_metrics(port)
        result["sinks"] = sink_stats
        result["deliveries_per_s"] = result["sent"] * args.viewers * (result["delivered_min"] / max(1, result["sent"])) / args.duration
        return result
    finally:
        if transcode is not None:
            transcode.stop()
        for proc in sink_procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def onair_metrics(port: int) -> dict[str, float]:
    """Mean tick time, comment post time and bus lag from the node's /metrics, and its full garbage
    collections since start (viewers joining included): the event loop's pauses."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("onair_chat_", "onair_gc_")) and ("_sum " in line or "_count " in line):
            name, value = line.split(" ")
            values[name] = float(value)
    out = {}
    for name in ("flush", "post", "bus_lag"):
        count = values.get(f"onair_chat_{name}_seconds_count", 0)
        out[name] = values.get(f"onair_chat_{name}_seconds_sum", 0) / count if count else float("nan")
    for part in ("count", "sum"):
        out["gc_" + part] = values.get(f"onair_gc_full_collection_seconds_{part}", float("nan"))
    return out


def redis_client_flush(url: str) -> None:
    import redis
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def report(target: str, r: dict[str, Any], args: argparse.Namespace) -> str:
    sinks = r["sinks"]
    bmin = min((s["bytes_min"] for s in sinks), default=0)
    closed = sum(s["closed"] for s in sinks)
    reads = max((s.get("reads_median", 0) for s in sinks), default=0)
    def p(v: float | None) -> str:
        return "n/a" if v is None else f"{v * 1000:.0f} ms"
    transcode = ""
    if r["realtime_factors"]:
        factors = ", ".join("n/a" if f is None else f"{f:.2f}x" for f in r["realtime_factors"])
        transcode = f"  transcode workers: {r['workers_cpu_load']:.2f} core under load, realtime factors {factors}"
    return (f"{target:9s} viewers={args.viewers} sent={r['sent']} delivered(min per instrumented)={r['delivered_min']} "
            f"p50={p(r['p50'])} p99={p(r['p99'])} max={p(r['max'])} deliveries/s={r['deliveries_per_s']:.0f} "
            f"server_cpu={r['server_cpu']:.2f} core ({r['server_cpu_load']:.2f} under load, "
            f"{r['server_kernel_share']:.0%} in the kernel; {r['writes_per_s']:.0f} "
            f"writes/s, {r['cpu_us_per_write']:.1f} µs CPU per write) "
            f"(generators: sinks {r['sink_cpu']:.2f}, probe ~{r['probe_cpu']:.2f})  sink bytes min={bmin} "
            f"(instrumented median {r['bytes_per_viewer']:.0f}) reads/sink={reads} sinks closed={closed} "
            f"loadavg={r['loadavg']:.2f}"
            + ("" if "server_metrics" not in r else
               "  [server means: tick {flush:.3f} s, comment post {post:.3f} s, bus lag {bus_lag:.3f} s; "
               "full GCs since start {gc_count:.0f}, {gc_sum:.2f} s]".format(**r["server_metrics"])) + transcode)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["main", "sink", "probe"], default="main")
    parser.add_argument("--target", default="onair")
    parser.add_argument("--targets", default="onair,socketio")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--broadcast", default="")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--instrumented", type=int, default=200)
    parser.add_argument("--comments", type=float, default=50.0, help="comments per second")
    parser.add_argument("--reactions", type=float, default=200.0, help="reactions per second")
    parser.add_argument("--senders", type=int, default=25, help="sender sockets (onair limits 3 comments/s each)")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=3.0, help="seconds to wait for late deliveries")
    parser.add_argument("--pad", type=int, default=60, help="extra characters per comment")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--tick", type=float, default=None, help="onair fan-out tick (s; default: ChatSettings')")
    parser.add_argument("--chat-settings", default="{}",
                        help='onair: other ChatSettings fields as JSON, e.g. \'{"room_write_rate": 100000}\'')
    parser.add_argument("--transcode", type=int, default=0,
                        help="onair: keep N broadcasts publishing 1080p30 over RTMP, transcoded with the default "
                             "ladder by the node's workers, during the run")
    parser.add_argument("--worker-nice", type=int, default=None,
                        help="onair: ONAIR_WORKER_NICE for the node's transcode workers (default: the worker's own)")
    parser.add_argument("--sink-procs", type=int, default=1)
    parser.add_argument("--sink-drain-interval", type=float, default=0.05,
                        help="sinks read each socket every S seconds and wait on no readiness, so the server's "
                             "writes wake nobody (0: an asyncio protocol woken by every write, the way of runs "
                             "before 2026-11-29)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    args.rate, args.react_rate = args.comments, args.reactions
    if args.role != "main":
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        asyncio.run(run_sinks(args) if args.role == "sink" else run_probe(args))
        return 0
    targets = [t for t in args.targets.split(",") if t]
    if args.transcode and targets != ["onair"]:
        print("--transcode loads the onair node under test: running onair only", flush=True)
        targets = ["onair"]
    print(f"chat fan-out: {machine()}; {args.viewers} viewers ({args.instrumented} instrumented), "
          f"{args.comments:g} comments/s + {args.reactions:g} reactions/s for {args.duration:g} s, "
          f"{args.rounds} round(s); sinks " + (f"drain every {args.sink_drain_interval * 1000:g} ms"
                                               if args.sink_drain_interval > 0 else "woken by each write"), flush=True)
    results: dict[str, list[dict[str, Any]]] = {t: [] for t in targets}
    with tempfile.TemporaryDirectory(prefix="onair-chatbench-") as tmp:
        workdir = Path(tmp)
        script = prepare_socketio(workdir) if "socketio" in targets else None
        if args.transcode:
            make_source(workdir / "source-1080p.flv", "1920x1080", 10)
            print(f"transcode load: {args.transcode} broadcasts publishing 1080p30 (-re, looped) into the "
                  f"node's default ladder" + ("" if args.worker_nice is None else
                                                f", ONAIR_WORKER_NICE={args.worker_nice}"), flush=True)
        for _ in range(args.rounds):  # alternate A B A B
            for target in targets:
                r = run_one(target, args, workdir, script)
                results[target].append(r)
                print(report(target, r, args), flush=True)
    if args.rounds > 1:
        for target, rs in results.items():
            print(f"median {target}: p50={median([r['p50'] or 0 for r in rs]) * 1000:.0f} ms "
                  f"p99={median([r['p99'] or 0 for r in rs]) * 1000:.0f} ms cpu={median([r['server_cpu'] for r in rs]):.2f} "
                  f"({median([r['server_cpu_load'] for r in rs]):.2f} under load, "
                  f"{median([r['cpu_us_per_write'] for r in rs]):.1f} µs per write)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
