"""Simulcast: CPU per forwarded target, onair vs ``ffmpeg -c copy -f flv`` processes; and the delay
forwarding adds at the destination, publish → destination playlist, vs publishing to it directly.

CPU.  One onair broadcast (``--ladder source``) gets a 720p30 ~3 Mbps H.264 + AAC source published with
``ffmpeg -re -c copy``; the same source goes, also with ``-re -c copy``, to a "source" nginx-rtmp.  Each round:

* onair with ``--targets`` enabled targets (all to a destination nginx-rtmp), a window of ``--window`` s;
* onair with those targets disabled, a window: the difference of the node process's own CPU (forwarding
  runs on its event loop; the transcode worker is not counted) is the forwarding's cost;
* ``--targets`` processes ``ffmpeg -i rtmp://source/... -c copy -f flv rtmp://destination/...``, a window:
  their CPU (each its own process) is the reference.

Figures: CPU seconds per media second per target (median over rounds) and the median per-round ratio.

Delay.  A destination nginx-rtmp with ``hls on; hls_fragment 1s``; rounds alternate publishing the source
straight to it and publishing it to onair, which forwards it there.  The playlist is polled every 10 ms;
for each new fragment, delay = when it appeared − (publish start + the media time at its end).  Medians per
path; the difference is what onair adds.

    python benchmarks/simulcast.py --targets 4 --window 10 --rounds 3 --delay-rounds 3
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._measure import free_port, machine, median, own_cpu_seconds, tree_cpu_seconds  # noqa: E402
from benchmarks._node import BenchNode, make_flv_source, publish_flv, rtmp_tools_missing  # noqa: E402

MODULES = Path("/usr/lib/nginx/modules")
ADMIN = "bench-admin-token-0123456789"
REPO = Path(__file__).resolve().parent.parent
_EXTINF = re.compile(r"#EXTINF:([0-9.]+)")


class Nginx:
    def __init__(self, prefix: Path, hls: bool) -> None:
        self.port = free_port()
        self.hls_dir = prefix / "hls"
        self.hls_dir.mkdir(parents=True)
        hls_conf = f"hls on; hls_path {self.hls_dir}; hls_fragment 1s; hls_playlist_length 10m;" if hls else ""
        conf = prefix / "nginx.conf"
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers write HLS in the private temp dir
        conf.write_text(f"""load_module {MODULES / 'ngx_rtmp_module.so'};
{user}daemon off;
master_process on;
worker_processes 1;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
rtmp {{ server {{ listen 127.0.0.1:{self.port}; chunk_size 4096;
  application live {{ live on; record off; {hls_conf} }} }} }}
""")
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def url(self, name: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{name}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


#: onair's HLS packaging; it also sets how long the RTMP edge gathers reads (0.25 s for mpegts, 0.05 s for
#: lowlatency), which is most of the delay onair adds
VARIANT = {"name": "mpegts"}


def start_node(work: Path, name: str) -> BenchNode:
    data = work / f"{name}-data"

    def command(http: int, rtmp: int) -> list[str]:
        return [sys.executable, "-m", "broadcaster.cli", "serve", "--host", "127.0.0.1", "--http-port", str(http),
                "--rtmp-port", str(rtmp), "--data-dir", str(data), "--admin-token", ADMIN, "--ladder", "source",
                "--hls-variant", VARIANT["name"], "--segment-target", "2", "--reconnect-grace", "1", "--log-level", "warning"]

    return BenchNode(command, work / f"{name}.log", ADMIN, cwd=REPO)


def new_broadcast(node: BenchNode) -> dict:
    status, doc = node.request("POST", "/api/broadcasts", {"title": "bench"})
    assert status == 201, doc
    return doc  # type: ignore[return-value]


def wait_targets(node: BenchNode, broadcast_id: str, wanted: str, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, doc = node.request("GET", f"/api/broadcasts/{broadcast_id}/simulcast")
        statuses = [t["status"] for t in doc["targets"]]  # type: ignore[index]
        if statuses.count(wanted) == count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"targets did not become {wanted}: {doc}")


# -- CPU ------------------------------------------------------------------------------------------------

def cpu_rounds(work: Path, source: Path, targets: int, window: float, rounds: int, settle: float) -> None:
    dest = Nginx(work / "nginx-dest", hls=False)
    src = Nginx(work / "nginx-src", hls=False)
    node = start_node(work, "cpu")
    publishers: list[subprocess.Popen[bytes]] = []
    try:
        broadcast = new_broadcast(node)
        bid = broadcast["id"]
        ids = []
        for i in range(targets):
            status, doc = node.request("POST", f"/api/broadcasts/{bid}/simulcast",
                                       {"url": f"rtmp://127.0.0.1:{dest.port}/live", "stream_key": f"onair{i}",
                                        "name": f"t{i}", "enabled": False})
            assert status == 201, doc
            ids.append(doc["id"])  # type: ignore[index]
        rtmp_url = f"rtmp://127.0.0.1:{node.rtmp_port}/live/{broadcast['stream_key']}"
        publishers = [publish_flv(source, rtmp_url), publish_flv(source, src.url("src"))]
        time.sleep(settle)
        onair, ffmpeg, ratios = [], [], []
        for round_no in range(1, rounds + 1):
            for tid in ids:
                node.request("PATCH", f"/api/broadcasts/{bid}/simulcast/{tid}", {"enabled": True})
            wait_targets(node, bid, "live", targets)
            time.sleep(settle)
            on = _own_cpu_rate(node.proc.pid, window)
            for tid in ids:
                node.request("PATCH", f"/api/broadcasts/{bid}/simulcast/{tid}", {"enabled": False})
            time.sleep(settle)
            off = _own_cpu_rate(node.proc.pid, window)
            per_target = max(0.0, on - off) / targets
            copies = [subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
                                        "-i", src.url("src"), "-c", "copy", "-f", "flv", dest.url(f"ffmpeg{i}")],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(targets)]
            time.sleep(settle)
            before = sum(tree_cpu_seconds(p.pid) for p in copies)
            start = time.monotonic()
            time.sleep(window)
            after = sum(tree_cpu_seconds(p.pid) for p in copies)
            elapsed = time.monotonic() - start
            for p in copies:
                p.terminate()
                p.wait(10)
            reference = (after - before) / elapsed / targets
            onair.append(per_target)
            ffmpeg.append(reference)
            ratios.append(per_target / reference if reference > 0 else float("inf"))
            print(f"round {round_no}: node with {targets} targets {on:.4f}, without {off:.4f} CPU s/s → onair "
                  f"{per_target:.4f} per target; ffmpeg -c copy {reference:.4f} per target "
                  f"(ratio {ratios[-1]:.2f})", flush=True)
        for p in publishers:
            if p.poll() is not None and p.returncode != 0:
                raise RuntimeError(f"a publisher failed: {p.stderr.read().decode() if p.stderr else ''}")
        print(f"\nCPU s per media s per target (median of {rounds}): onair {median(onair):.4f}, "
              f"ffmpeg -c copy -f flv {median(ffmpeg):.4f}; median per-round ratio {median(ratios):.2f} "
              f"(target <= 1.2)")
    finally:
        for p in publishers:
            p.kill()
        node.stop()
        src.stop()
        dest.stop()


def _own_cpu_rate(pid: int, window: float) -> float:
    before, start = own_cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    return (own_cpu_seconds(pid) - before) / (time.monotonic() - start)


# -- delay -----------------------------------------------------------------------------------------------

def fragment_delays(playlist: Path, started: float, publisher: subprocess.Popen[bytes]) -> list[float]:
    """Poll ``playlist`` every 10 ms while the publisher runs: for each fragment, when it appeared minus
    (publish start + media time at its end).  Fragments closed by the publisher leaving are not counted
    (they measure the end of the stream, not its flow)."""
    seen = 0
    delays = []
    while publisher.poll() is None:
        try:
            text = playlist.read_text()
        except OSError:
            text = ""
        durations = [float(d) for d in _EXTINF.findall(text)]
        now = time.monotonic()
        for i in range(seen, len(durations)):
            delays.append(now - (started + sum(durations[:i + 1])))
        seen = max(seen, len(durations))
        time.sleep(0.01)
    return delays


def delay_rounds(work: Path, source: Path, rounds: int) -> None:
    dest = Nginx(work / "nginx-delay", hls=True)
    node = start_node(work, "delay")
    direct, forwarded = [], []
    try:
        for round_no in range(1, rounds + 1):
            name = f"direct{round_no}"
            started = time.monotonic()
            d = fragment_delays(dest.hls_dir / f"{name}.m3u8", started, publish_flv(source, dest.url(name)))
            broadcast = new_broadcast(node)
            name = f"via{round_no}"
            status, doc = node.request("POST", f"/api/broadcasts/{broadcast['id']}/simulcast",
                                       {"url": f"rtmp://127.0.0.1:{dest.port}/live", "stream_key": name})
            assert status == 201, doc
            started = time.monotonic()
            f = fragment_delays(dest.hls_dir / f"{name}.m3u8", started,
                                publish_flv(source, f"rtmp://127.0.0.1:{node.rtmp_port}/live/{broadcast['stream_key']}"))
            node.request("POST", f"/api/broadcasts/{broadcast['id']}/end")
            direct += d
            forwarded += f
            print(f"round {round_no}: fragment delay direct median {median(d):.3f} s ({len(d)} fragments), "
                  f"through onair {median(f):.3f} s ({len(f)})", flush=True)
        print(f"\npublish → destination playlist, median per fragment: direct {median(direct):.3f} s, through "
              f"onair {median(forwarded):.3f} s: onair adds {median(forwarded) - median(direct):.3f} s")
    finally:
        node.stop()
        dest.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=4)
    parser.add_argument("--window", type=float, default=10)
    parser.add_argument("--settle", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay-rounds", type=int, default=3)
    parser.add_argument("--delay-seconds", type=float, default=12)
    parser.add_argument("--variant", choices=["mpegts", "lowlatency"], default="mpegts")
    parser.add_argument("--only", choices=["cpu", "delay"], help="run one of the two measurements")
    args = parser.parse_args()
    VARIANT["name"] = args.variant
    if rtmp_tools_missing():
        return 2
    with tempfile.TemporaryDirectory(prefix="onair-bench-simulcast-") as tmp:
        work = Path(tmp)
        print(f"machine: {machine()}; 720p30 ~3 Mbps H.264 + AAC, {args.targets} targets, "
              f"{args.window:.0f} s windows, {args.rounds} rounds; onair --hls-variant {args.variant}", flush=True)
        if args.only != "delay":
            cpu_media = args.settle + args.rounds * (3 * args.settle + 3 * args.window + 5) + 20
            source = work / "source.flv"
            make_flv_source(source, cpu_media)
            cpu_rounds(work, source, args.targets, args.window, args.rounds, args.settle)
        if args.only != "cpu":
            short = work / "short.flv"
            make_flv_source(short, args.delay_seconds)
            delay_rounds(work, short, args.delay_rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
