"""CPU per media second of N concurrent passthrough broadcasts: onair vs nginx-rtmp, side by side.

Both servers get the same source (720p30 H.264 ~3 Mbps + AAC, published with
``ffmpeg -re -c copy``) and write HLS with 2 s segments.  Rounds alternate
onair, nginx, onair, nginx ...; the figure is CPU seconds (server process tree,
workers included; the publishers are not counted) per media second per stream.
For onair the figure is also split into the node's own process ("main": RTMP,
pipeline feeding) and its transcode workers (children, live or reaped).

    python benchmarks/ingest.py --streams 2 --seconds 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._measure import free_port, machine, median, own_cpu_seconds, tree_cpu_seconds  # noqa: E402
from benchmarks._node import make_flv_source, publish_flv, rtmp_tools_missing  # noqa: E402

NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


def publish_all(urls: list[str], source: Path) -> list[subprocess.Popen[bytes]]:
    return [publish_flv(source, url) for url in urls]


def measure(server_pid: int, urls: list[str], source: Path, seconds: float) -> tuple[float, float]:
    """(whole tree, server process alone), CPU s per media s per stream."""
    publishers = publish_all(urls, source)
    time.sleep(2.0)  # connect, first keyframe, workers spawned
    before, own_before = tree_cpu_seconds(server_pid), own_cpu_seconds(server_pid)
    start = time.monotonic()
    for proc in publishers:
        proc.wait()
    elapsed = time.monotonic() - start
    # Read the server itself first: the tree figure then includes workers that
    # flush and exit (reaped into cutime) right after the publishers end.
    own_after = own_cpu_seconds(server_pid)
    after = tree_cpu_seconds(server_pid)
    failed = [p.stderr.read().decode() for p in publishers if p.returncode != 0]
    if failed:
        raise RuntimeError(f"a publisher failed: {failed[0]}")
    media_seconds = elapsed * len(urls)
    return (after - before) / media_seconds, (own_after - own_before) / media_seconds


#: onair's packaging in this comparison: "mpegts" is the same output nginx-rtmp writes (TS, audio
#: muxed, 2 s fragments); "lowlatency" adds CMAF parts, a playlist write per part and an audio rendition
VARIANT = {"name": "mpegts"}


def run_onair(work: Path, streams: int, source: Path, seconds: float) -> tuple[float, float]:
    http, rtmp = free_port(), free_port()
    data = work / "onair-data"
    shutil.rmtree(data, ignore_errors=True)
    token = "bench-admin-token-0123456789"
    proc = subprocess.Popen([sys.executable, "-m", "broadcaster.cli", "serve", "--host", "127.0.0.1",
                             "--http-port", str(http), "--rtmp-port", str(rtmp), "--data-dir", str(data),
                             "--admin-token", token, "--ladder", "source", "--segment-target", "2",
                             "--hls-variant", VARIANT["name"],
                             "--reconnect-grace", "1", "--log-level", "warning"],
                            cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL,
                            stderr=open(work / "onair.log", "ab"))
    try:
        _wait_http(f"http://127.0.0.1:{http}/healthz")
        urls = []
        for i in range(streams):
            req = urllib.request.Request(f"http://127.0.0.1:{http}/api/broadcasts", method="POST",
                                         data=json.dumps({"title": f"bench {i}"}).encode(),
                                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            doc = json.load(urllib.request.urlopen(req))
            urls.append(f"rtmp://127.0.0.1:{rtmp}/live/{doc['stream_key']}")
        return measure(proc.pid, urls, source, seconds)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def run_nginx(work: Path, streams: int, source: Path, seconds: float) -> float:
    port = free_port()
    prefix = work / "nginx"
    shutil.rmtree(prefix, ignore_errors=True)
    (prefix / "logs").mkdir(parents=True)
    (prefix / "hls").mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
load_module {NGINX_MODULE};
daemon off;
master_process on;
worker_processes 1;
error_log {prefix}/logs/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    application live {{
      live on;
      hls on;
      hls_path {prefix}/hls;
      hls_fragment 2s;
      hls_nested on;
    }}
  }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        urls = [f"rtmp://127.0.0.1:{port}/live/stream{i}" for i in range(streams)]
        return measure(proc.pid, urls, source, seconds)[0]
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", choices=["mpegts", "lowlatency"], default="mpegts",
                        help="onair's HLS packaging (mpegts: the same output as nginx-rtmp's)")
    args = parser.parse_args()
    VARIANT["name"] = args.variant
    if rtmp_tools_missing():
        return 2
    if not Path(NGINX_MODULE).exists():
        print(f"{NGINX_MODULE} missing (apt-get install libnginx-mod-rtmp)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="onair-bench-") as tmp:
        work = Path(tmp)
        source = work / "source.flv"
        make_flv_source(source, args.seconds)
        onair, mains, nginx, ratios = [], [], [], []
        for round_no in range(1, args.rounds + 1):
            a, main_cpu = run_onair(work, args.streams, source, args.seconds)
            b = run_nginx(work, args.streams, source, args.seconds)
            onair.append(a)
            mains.append(main_cpu)
            nginx.append(b)
            ratios.append(a / b if b > 0 else float("inf"))
            print(f"round {round_no}: onair {a:.4f} (main {main_cpu:.4f}, workers {a - main_cpu:.4f})  "
                  f"nginx-rtmp {b:.4f}  CPU s per media s per stream  (ratio {ratios[-1]:.2f})", flush=True)
    print(f"\nmachine: {machine()}; {args.streams} concurrent passthrough streams, 720p30 ~3 Mbps, "
          f"{args.seconds} s each, {args.rounds} rounds; onair --hls-variant {args.variant}")
    print(f"{'server':<12} {'CPU s / media s / stream (median)':>34}")
    print(f"{'onair':<12} {median(onair):>34.4f}")
    print(f"{'  main':<12} {median(mains):>34.4f}")
    print(f"{'  workers':<12} {median([a - m for a, m in zip(onair, mains)]):>34.4f}")
    print(f"{'nginx-rtmp':<12} {median(nginx):>34.4f}")
    print(f"median per-round ratio onair/nginx-rtmp: {median(ratios):.2f} (target <= 2.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
