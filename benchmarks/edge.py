"""LL-HLS viewers straight at the origin vs through the reference nginx edge (deploy/edge/nginx.conf).

One real ``onair serve`` node (``--ladder source``: the video rendition and the audio rendition) fed by a
real ffmpeg publisher; the edge is nginx with the shipped config, the node as its upstream.  Viewers are
simulated in their own processes, each as hls.js plays LL-HLS: per rendition a keep-alive connection, a
blocking reload for the hinted part (``_HLS_msn``/``_HLS_part``), then every part it lists that the viewer
has not got yet, then the next blocking reload.  For N viewers, (a) at the origin, then (b) through the
edge, in one run:

* origin requests per part per rendition: part objects and playlists the node answered, divided by the
  parts written in the window (straight at the origin: every viewer request; through the edge: the
  requests nginx sent upstream, from its access log: ``upstream=`` is set on a miss, empty on a hit);
* origin CPU: the node's main process (not its transcode worker), and the edge's (nginx, master and
  worker), in cores over the window;
* part-availability delay: the part file's mtime on the node → the part's last byte at the viewer
  (one clock: one machine), p50/p99 over every part fetched in the window.

    python -m benchmarks.edge --viewers 10,100,1000 --window 15

The viewers' own CPU is reported too: on a small machine they compete with the origin and the edge.
``--modes origin,nginx,varnish`` adds Varnish 7 (Debian ``varnish``) with ``deploy/edge/varnish.vcl``: its
request coalescing wakes the waiters when the object arrives, where nginx's cache lock polls every 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import machine, own_cpu_seconds, tree_cpu_seconds  # noqa: E402
from benchmarks._node import BenchNode  # noqa: E402

ADMIN = "admin_edge_benchmark_token_0123456789"
RENDITIONS = ("source", "audio")
VIEWERS_PER_PROCESS = 250
_PART = re.compile(r'#EXT-X-PART:[^\n]*URI="s(\d+)\.p(\d+)\.m4s"')
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="s(\d+)\.p(\d+)\.m4s"')
_UPSTREAM = re.compile(r'"GET /hls/\S+/(\w+)/(\S+)" \d+ \d+ cache=\S+ upstream=(\S+)')


# --- the viewer processes ------------------------------------------------------------------------

class Connection:
    """A minimal HTTP/1.1 keep-alive client (a viewer's connection for one rendition): cheap per request."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            match = re.search(rb"content-length: *(\d+)", lower)
            body = await self.reader.readexactly(int(match.group(1))) if match else b""
        if b"connection: close" in lower:
            self.writer.close()
            self.writer = None
        return status, body


async def _follow(host: str, port: int, broadcast_id: str, rendition: str, folder: Path, until: float,
                  delays: list[tuple[float, float]], counts: dict[str, int], mtimes: dict[str, float],
                  seen: set[tuple[str, float]]) -> None:
    conn = Connection(host, port)
    base = f"/hls/{broadcast_id}/{rendition}"
    status, body = await conn.get(f"{base}/index.m3u8")
    while status != 200 or not _HINT.search(body.decode()):
        await asyncio.sleep(0.5)
        status, body = await conn.get(f"{base}/index.m3u8")
    text = body.decode()
    listed = [(int(m), int(p)) for m, p in _PART.findall(text)]
    last = listed[-1] if listed else (-1, -1)
    while time.time() < until:
        msn, part = _HINT.search(text).groups()
        status, body = await conn.get(f"{base}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")
        counts["requests"] += 1
        if status != 200:
            counts["errors"] += 1
            await asyncio.sleep(0.1)
            continue
        text = body.decode()
        for m, p in ((int(m), int(p)) for m, p in _PART.findall(text)):
            if (m, p) <= last:
                continue
            name = f"s{m}.p{p}.m4s"
            status, _ = await conn.get(f"{base}/{name}")
            got = time.time()
            counts["requests"] += 1
            last = (m, p)
            if status != 200:
                counts["errors"] += 1
                continue
            key = f"{rendition}/{name}"
            written = mtimes.get(key)
            if written is None:
                written = mtimes[key] = (folder / rendition / name).stat().st_mtime
                if len(mtimes) > 10_000:
                    mtimes.clear()
            delays.append((written, got - written))
            seen.add((key, written))


def _viewers_process(host: str, port: int, broadcast_id: str, folder: str, viewers: int, until: float,
                     results: multiprocessing.Queue) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    delays: list[tuple[float, float]] = []
    counts = {"requests": 0, "errors": 0}
    mtimes: dict[str, float] = {}
    seen: set[tuple[str, float]] = set()

    async def main() -> None:
        tasks = []
        for _ in range(viewers):
            for rendition in RENDITIONS:
                tasks.append(asyncio.ensure_future(_follow(host, port, broadcast_id, rendition, Path(folder), until,
                                                           delays, counts, mtimes, seen)))
            await asyncio.sleep(1.0 / viewers)  # viewers arrive over a second
        done = await asyncio.gather(*tasks, return_exceptions=True)
        counts["failed_viewers"] = sum(isinstance(d, BaseException) for d in done)

    asyncio.run(main())
    results.put((delays, counts, os.times()[0] + os.times()[1], seen))


# --- the run ---------------------------------------------------------------------------------------

class NginxEdge:
    """The shipped edge: deploy/edge/nginx.conf (tests/support/edge.py fills it in)."""

    name = "nginx"

    def __init__(self, prefix: Path, origin_port: int) -> None:
        from tests.support.edge import Edge

        self._edge = Edge(prefix, origin_port)
        self.port = self._edge.port
        self.pid = self._edge.proc.pid
        self._log = prefix / "access.log"

    def mark(self) -> int:
        return self._log.stat().st_size if self._log.exists() else 0

    def origin_requests(self, mark: int) -> tuple[int, int]:
        """(part requests, playlist requests) nginx sent upstream since ``mark`` (its access log)."""
        parts = playlists = 0
        with self._log.open("rb") as fh:
            fh.seek(mark)
            for line in fh.read().decode(errors="replace").splitlines():
                match = _UPSTREAM.search(line)
                if match is None or match.group(3) == "-":
                    continue
                if match.group(2).endswith(".m4s") and ".p" in match.group(2):
                    parts += 1
                elif match.group(2) == "index.m3u8":
                    playlists += 1
        return parts, playlists

    def stop(self) -> None:
        self._edge.stop()


VCL = ROOT / "deploy" / "edge" / "varnish.vcl"


class VarnishEdge:
    """Varnish 7 with ``deploy/edge/varnish.vcl``: the built-in VCL (honours Cache-Control, keys on the full
    URL) and request coalescing whose waiting list is woken when the object arrives."""

    name = "varnish"

    def __init__(self, prefix: Path, origin_port: int) -> None:
        from benchmarks._measure import free_port

        prefix.mkdir(parents=True)
        self.port = free_port()
        (prefix / "onair.vcl").write_text(VCL.read_text().replace("@HOST@", "127.0.0.1").replace("@PORT@", str(origin_port)))
        self._dir = prefix / "work"
        self._proc = subprocess.Popen(["varnishd", "-F", "-j", "none", "-n", str(self._dir), "-a",
                                       f"127.0.0.1:{self.port}", "-f", str(prefix / "onair.vcl"), "-s", "malloc,256m",
                                       "-p", "default_grace=0", "-p", "default_keep=0"],
                                      stdout=subprocess.DEVNULL, stderr=(prefix / "varnishd.log").open("wb"))
        self.pid = self._proc.pid
        self._log = prefix / "backend.log"
        time.sleep(2)
        self._ncsa = subprocess.Popen(["varnishncsa", "-b", "-n", str(self._dir), "-F", "%U", "-w", str(self._log)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def mark(self) -> int:
        return self._log.stat().st_size if self._log.exists() else 0

    def origin_requests(self, mark: int) -> tuple[int, int]:
        time.sleep(1)  # varnishncsa writes behind
        parts = playlists = 0
        with self._log.open("rb") as fh:
            fh.seek(mark)
            for line in fh.read().decode(errors="replace").splitlines():
                if line.endswith(".m4s") and ".p" in line.rsplit("/", 1)[-1]:
                    parts += 1
                elif line.endswith("index.m3u8"):
                    playlists += 1
        return parts, playlists

    def stop(self) -> None:
        for proc in (self._ncsa, self._proc):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def measure(node: BenchNode, edge: NginxEdge | VarnishEdge | None, broadcast_id: str, folder: Path, viewers: int,
            warmup: float, window: float) -> dict[str, float]:
    """One run: ``viewers`` straight at the node (``edge`` None) or through ``edge``."""
    port = node.http_port if edge is None else edge.port
    start = time.time() + warmup
    end = start + window
    processes = max(1, math.ceil(viewers / VIEWERS_PER_PROCESS))
    results: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_viewers_process,
                                     args=("127.0.0.1", port, broadcast_id, str(folder),
                                           viewers // processes + (i < viewers % processes), end, results))
             for i in range(processes)]
    for proc in procs:
        proc.start()
    time.sleep(max(0.0, start - time.time()))
    origin_cpu = own_cpu_seconds(node.proc.pid)
    edge_cpu = tree_cpu_seconds(edge.pid) if edge is not None else 0.0
    mark = edge.mark() if edge is not None else 0
    load = os.getloadavg()[0]
    time.sleep(max(0.0, end - time.time()))
    origin_cpu = own_cpu_seconds(node.proc.pid) - origin_cpu
    edge_cpu = tree_cpu_seconds(edge.pid) - edge_cpu if edge is not None else 0.0
    upstream = edge.origin_requests(mark) if edge is not None else None
    collected = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    delays = [d for ds, _, _, _ in collected for written, d in ds if start <= written < end - 1]
    requests = sum(c["requests"] for _, c, _, _ in collected)
    errors = sum(c["errors"] for _, c, _, _ in collected)
    failed = sum(c.get("failed_viewers", 0) for _, c, _, _ in collected)
    client_cpu = sum(cpu for _, _, cpu, _ in collected)
    # the parts written in the window, as the viewers saw them (the node deletes parts behind its window)
    parts = len({key for *_, seen in collected for key, written in seen if start <= written < end})
    if upstream is None:
        origin_parts = sum(1 for ds, _, _, _ in collected for written_at, _ in ds if start <= written_at < end)
        origin_playlists = None
    else:
        origin_parts, origin_playlists = upstream
    return {
        "parts": parts, "origin_part_requests_per_part": origin_parts / parts if parts else float("nan"),
        "origin_playlist_requests_per_part": (origin_playlists / parts if origin_playlists is not None and parts
                                              else float("nan")),
        "viewer_requests": requests, "errors": errors, "failed_viewers": failed,
        "origin_cores": origin_cpu / window, "edge_cores": edge_cpu / window,
        "client_cpu_s": client_cpu, "p50_ms": _percentile(delays, 0.5) * 1000,
        "p99_ms": _percentile(delays, 0.99) * 1000, "samples": len(delays), "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", default="10,100,1000", help="viewer counts, comma-separated")
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the window opens")
    parser.add_argument("--modes", default="origin,nginx",
                        help="origin (straight at the node), nginx (the shipped edge), varnish (a reference edge)")
    args = parser.parse_args()
    from tests.support.publish import ffmpeg_publish

    counts = [int(v) for v in args.viewers.split(",")]
    modes = args.modes.split(",")
    runs = len(counts) * len(modes)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "node"
        node = BenchNode(lambda http, rtmp: [sys.executable, "-m", "broadcaster.cli", "serve", "--host", "127.0.0.1",
                                             "--http-port", str(http), "--rtmp-port", str(rtmp), "--data-dir",
                                             str(data), "--admin-token", ADMIN, "--ladder", "source",
                                             "--segment-target", "2", "--log-level", "warning"],
                         Path(tmp) / "node.log", ADMIN, cwd=ROOT)
        edges = {"origin": None}
        if "nginx" in modes:
            edges["nginx"] = NginxEdge(Path(tmp) / "nginx", node.http_port)
        if "varnish" in modes:
            edges["varnish"] = VarnishEdge(Path(tmp) / "varnish", node.http_port)
        publisher = None
        try:
            status, doc = node.request("POST", "/api/broadcasts", {"title": "edge benchmark"})
            assert status == 201, doc
            seconds = runs * (args.window + args.warmup + 15) + 30
            publisher = ffmpeg_publish(f"rtmp://127.0.0.1:{node.rtmp_port}/live/{doc['stream_key']}", seconds=seconds,
                                       gop=25)
            folder = data / "hls" / doc["id"]
            deadline = time.monotonic() + 30
            while not (folder / "audio" / "index.m3u8").exists():
                assert time.monotonic() < deadline, "no playlist in 30 s"
                time.sleep(0.2)
            time.sleep(3)
            print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; window "
                  f"{args.window:g} s after {args.warmup:g} s; renditions {', '.join(RENDITIONS)}; part target 0.5 s")
            print(f"{'viewers':>7} {'mode':>7} {'parts':>5} {'orig part req/part':>18} {'orig playlist req/part':>22} "
                  f"{'origin cores':>12} {'edge cores':>10} {'p50 ms':>7} {'p99 ms':>7} {'samples':>7} "
                  f"{'viewer req':>10} {'errors':>6} {'viewer CPU s':>12} {'load':>5}")
            for viewers in counts:
                for mode in modes:
                    r = measure(node, edges[mode], doc["id"], folder, viewers, args.warmup, args.window)
                    print(f"{viewers:>7} {mode:>7} {r['parts']:>5} {r['origin_part_requests_per_part']:>18.2f} "
                          f"{r['origin_playlist_requests_per_part']:>22.2f} {r['origin_cores']:>12.3f} "
                          f"{r['edge_cores']:>10.3f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['samples']:>7} "
                          f"{r['viewer_requests']:>10} {r['errors'] + r['failed_viewers']:>6} "
                          f"{r['client_cpu_s']:>12.1f} {r['load']:>5.1f}", flush=True)
        finally:
            if publisher is not None:
                publisher.terminate()
                publisher.wait(30)
            for edge in edges.values():
                if edge is not None:
                    edge.stop()
            node.stop()


if __name__ == "__main__":
    main()
