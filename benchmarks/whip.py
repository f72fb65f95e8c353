"""WHIP ingest vs RTMP ingest into the same ladder, side by side in one run.

For each round, one broadcast is published for ``--seconds`` of media:

* WHIP: an aiortc WHIP client (its own process) sends a synthetic moving
  pattern + tone; the node decodes it (aiortc), re-encodes H.264/AAC (the WHIP
  edge's encoder thread) and transcodes it into the ladder;
* RTMP: the ffmpeg CLI encodes the same kind of pattern (lavfi testsrc2 + sine,
  libx264 veryfast zerolatency) live and publishes it to the node's RTMP port.

Rounds alternate WHIP, RTMP, WHIP, RTMP ...  Figures: CPU seconds of the node
process tree (workers included, publishers not counted) per media second, and
the time from the POST (WHIP) / the publisher's start (RTMP) until the first
segment is listed in the first media playlist.  ICE runs on 127.0.0.1 only.

    python benchmarks/whip.py --seconds 12 --rounds 2 --size 640x360

Until the node mounts the WHIP routes itself, the benchmark's node process is
``create_app`` plus ``add_whip_routes`` (the ``_serve`` mode below).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._measure import machine, median, tree_cpu_seconds  # noqa: E402
from benchmarks._node import BenchNode  # noqa: E402

ADMIN = "admin_bench_whip_0123456789"


# --- the node (own process) ----------------------------------------------------

def serve(args: argparse.Namespace) -> int:
    import logging

    from aiohttp import web

    from broadcaster.app import create_app
    from broadcaster.config import NodeConfig
    from broadcaster.keys import LIVE
    from ingest.whip import WHIP_SESSIONS, WhipOptions, add_whip_routes

    logging.basicConfig(level=logging.WARNING)
    config = NodeConfig(host="127.0.0.1", http_port=args.http_port, rtmp_port=args.rtmp_port,
                        data_dir=Path(args.data_dir), admin_token=ADMIN, ladder=args.ladder,
                        reconnect_grace=1.0, ice_host=("127.0.0.1",), node_id="bench")
    app = create_app(config)
    if WHIP_SESSIONS not in app:
        add_whip_routes(app, lambda: app[LIVE], WhipOptions(ice_hosts=config.ice_host))
    web.run_app(app, host="127.0.0.1", port=args.http_port, print=None, access_log=None)
    return 0


# --- the WHIP publisher (own process) --------------------------------------------

def publish_whip(args: argparse.Namespace) -> int:
    from tests.support.whip_client import WhipClient
    from tests.support.synthetic import PatternVideoTrack, ToneAudioTrack

    width, height = (int(v) for v in args.size.split("x"))

    async def run() -> None:
        client = WhipClient(args.url, args.key)
        video = PatternVideoTrack(width, height)
        posted = time.time()
        try:
            await client.publish([video, ToneAudioTrack()])
            start_frames = video.frames_sent
            await asyncio.sleep(args.seconds)
            fps = (video.frames_sent - start_frames) / args.seconds
            await client.delete()
        finally:
            await client.close()
        # the aiortc sender encodes in Python: on a busy 2-core box it may not keep 30 fps
        print(json.dumps({"posted": posted, "fps": fps}), flush=True)

    asyncio.run(run())
    return 0


# --- the driver ------------------------------------------------------------------

class Node(BenchNode):
    def __init__(self, workdir: Path, ladder: str) -> None:
        super().__init__(lambda http, rtmp: [sys.executable, __file__, "_serve", "--http-port", str(http),
                                             "--rtmp-port", str(rtmp), "--data-dir", str(workdir / "data"),
                                             "--ladder", ladder],
                         workdir / "node.log", ADMIN)

    def first_segment_time(self, broadcast_id: str, deadline: float) -> float | None:
        """Poll until the first media playlist lists a segment; the time it was seen."""
        while time.time() < deadline:
            status, master = self.request("GET", f"/hls/{broadcast_id}/master.m3u8")
            if status == 200 and isinstance(master, bytes):
                uris = [line for line in master.decode().splitlines() if line and not line.startswith("#")]
                if uris:
                    status, media = self.request("GET", f"/hls/{broadcast_id}/{uris[0]}")
                    if status == 200 and isinstance(media, bytes) and b"#EXTINF" in media:
                        return time.time()
            time.sleep(0.05)
        return None

    def end(self, broadcast_id: str) -> None:
        self.request("POST", f"/api/broadcasts/{broadcast_id}/end")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, doc = self.request("GET", f"/api/broadcasts/{broadcast_id}")
            if isinstance(doc, dict) and doc.get("status") == "ended":
                break
            time.sleep(0.1)
        time.sleep(1.0)  # the worker process exits and is reaped: its CPU is in the node's cutime


def round_whip(node: Node, seconds: float, size: str) -> tuple[float, float | None, float]:
    _, broadcast = node.request("POST", "/api/broadcasts", {"title": "bench whip", "visibility": "public"})
    assert isinstance(broadcast, dict), broadcast
    before = tree_cpu_seconds(node.proc.pid)
    publisher = subprocess.Popen([sys.executable, __file__, "_publish-whip", "--url",
                                  f"{node.base}/whip/{broadcast['id']}", "--key", broadcast["stream_key"],
                                  "--seconds", str(seconds), "--size", size],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = node.first_segment_time(broadcast["id"], time.time() + seconds + 20)
    out, err = publisher.communicate(timeout=seconds + 60)
    if publisher.returncode != 0:
        raise RuntimeError(f"WHIP publisher failed: {err.decode()[-2000:]}")
    report = json.loads(out.decode().splitlines()[-1])
    node.end(broadcast["id"])
    cpu = tree_cpu_seconds(node.proc.pid) - before
    return cpu / seconds, (first - report["posted"]) if first else None, report["fps"]


def round_rtmp(node: Node, seconds: float, size: str) -> tuple[float, float | None, float]:
    _, broadcast = node.request("POST", "/api/broadcasts", {"title": "bench rtmp", "visibility": "public"})
    assert isinstance(broadcast, dict), broadcast
    before = tree_cpu_seconds(node.proc.pid)
    started = time.time()
    publisher = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "60",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv",
         f"rtmp://127.0.0.1:{node.rtmp_port}/live/{broadcast['stream_key']}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = node.first_segment_time(broadcast["id"], time.time() + seconds + 20)
    _, err = publisher.communicate(timeout=seconds + 60)
    if publisher.returncode != 0:
        raise RuntimeError(f"ffmpeg publisher failed: {err.decode()[-2000:]}")
    node.end(broadcast["id"])
    cpu = tree_cpu_seconds(node.proc.pid) - before
    return cpu / seconds, (first - started) if first else None, 30.0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "_serve":
        parser = argparse.ArgumentParser()
        for name in ("--http-port", "--rtmp-port"):
            parser.add_argument(name, type=int, required=True)
        parser.add_argument("--data-dir", required=True)
        parser.add_argument("--ladder", required=True)
        return serve(parser.parse_args(argv[1:]))
    if argv and argv[0] == "_publish-whip":
        parser = argparse.ArgumentParser()
        parser.add_argument("--url", required=True)
        parser.add_argument("--key", required=True)
        parser.add_argument("--seconds", type=float, required=True)
        parser.add_argument("--size", required=True)
        return publish_whip(parser.parse_args(argv[1:]))

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--ladder", default="source,1080p,720p,480p,360p", help="the node's default ladder")
    args = parser.parse_args(argv)
    results: dict[str, list[tuple[float, float | None, float]]] = {"whip": [], "rtmp": []}
    with tempfile.TemporaryDirectory(prefix="onair-bench-whip-") as tmp:
        node = Node(Path(tmp), args.ladder)
        try:
            for n in range(args.rounds):
                for name, run in (("whip", round_whip), ("rtmp", round_rtmp)):
                    cpu, first, fps = run(node, args.seconds, args.size)
                    results[name].append((cpu, first, fps))
                    seen = f"{first:.2f} s" if first is not None else "never"
                    print(f"round {n + 1} {name}: {cpu:.3f} CPU s per media s at {fps:.1f} fps sent, "
                          f"first segment after {seen}", flush=True)
        finally:
            node.stop()
    whip_cpu = [r[0] for r in results["whip"]]
    rtmp_cpu = [r[0] for r in results["rtmp"]]
    ratios = [w / r for w, r in zip(whip_cpu, rtmp_cpu) if r > 0]
    print(f"\nmachine: {machine()}; source {args.size} 30 fps + 48 kHz tone, {args.seconds:.0f} s per round, "
          f"ladder {args.ladder}")
    for name in ("whip", "rtmp"):
        firsts = [r[1] for r in results[name] if r[1] is not None]
        print(f"{name:5s} CPU s per media s: median {median([r[0] for r in results[name]]):.3f} "
              f"(video sent at median {median([r[2] for r in results[name]]):.1f} fps); "
              f"POST/publish -> first segment: median {median(firsts):.2f} s")
    print(f"WHIP/RTMP CPU ratio (median of per-round ratios): {median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
