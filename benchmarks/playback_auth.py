"""Origin CPU per HLS request: a restricted broadcast (grants, rewritten playlists, signed objects)
against a public one, side by side on one node in one run.

One ``onair serve`` process with two live broadcasts, one public and one restricted, both published by
ffmpeg over RTMP (``--ladder source``: H.264 passthrough, so the node does little else).  A load
generator in its own process plays LL-HLS viewer cycles against one of them at a time, as fast as it
can: master, media playlist, two blocking reloads at the live edge (answered at once), the two newest
parts of the video and of the audio rendition, the newest segment and the init section — 10 requests,
half playlists, half objects.  Rounds alternate public/restricted (order swapped every round); the
node's main process CPU (utime+stime from /proc; the HLS origin runs there) is read around each phase,
minus its idle rate measured just before (ingest and packaging of both broadcasts).

    python -m benchmarks.playback_auth --rounds 6 --seconds 6 --concurrency 8

Target (issue 14): a restricted broadcast costs at most 10 % more origin CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import machine, median, own_cpu_seconds  # noqa: E402
from benchmarks._node import BenchNode  # noqa: E402

ADMIN = "admin_bench_playback_0123456789"
_URI = re.compile(r'URI="([^"]+)"')


# --- the load generator (own process) ------------------------------------------------

async def _cycle(http, master_url: str, counts: dict[str, int]) -> None:
    async def get(url: str) -> str:
        async with http.get(url) as response:
            body = await response.read()
            counts[str(response.status)] = counts.get(str(response.status), 0) + 1
            return body.decode(errors="replace") if url.split("?")[0].endswith(".m3u8") else ""

    def join(base: str, uri: str) -> str:
        return urllib.parse.urljoin(base, uri)

    master = await get(master_url)
    media = [join(master_url, line) for line in master.splitlines() if line and not line.startswith("#")]
    audio = [join(master_url, uri) for uri in _URI.findall(master)]
    video_url, audio_url = media[0], audio[0]
    video = await get(video_url)
    objects: list[str] = []
    for url, text in ((video_url, video), (audio_url, None)):
        if text is None:
            text = await get(url)
        parts = [_URI.search(line).group(1) for line in text.splitlines() if line.startswith("#EXT-X-PART:")]
        if not parts:
            return
        msn, index = re.match(r"s(\d+)\.p(\d+)\.m4s", parts[-1].split("?")[0]).groups()
        sep = "&" if "?" in url else "?"
        # a blocking reload for the newest part listed: answered at once
        await get(f"{url}{sep}_HLS_msn={msn}&_HLS_part={index}")
        objects += [join(url, uri) for uri in parts[-2:]]
        if url == video_url:
            segments = [line for line in text.splitlines() if line and not line.startswith("#")]
            objects.append(join(url, segments[-1]))
            objects.append(join(url, _URI.search(next(line for line in text.splitlines()
                                                      if line.startswith("#EXT-X-MAP:"))).group(1)))
    for url in objects:
        await get(url)


def load(args: argparse.Namespace) -> int:
    import aiohttp

    async def run() -> dict[str, object]:
        counts: dict[str, int] = {}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            deadline = time.monotonic() + args.seconds

            async def worker() -> None:
                while time.monotonic() < deadline:
                    await _cycle(http, args.master, counts)

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            return {"counts": counts, "wall": time.monotonic() - started}

    print(json.dumps(asyncio.run(run())), flush=True)
    return 0


# --- the driver -----------------------------------------------------------------------

def start_node(workdir: Path) -> BenchNode:
    """``onair serve`` as it runs in production (its CLI, uvloop), passthrough only."""
    return BenchNode(lambda http, rtmp: [sys.executable, "-m", "broadcaster.cli", "serve", "--host", "127.0.0.1",
                                         "--http-port", str(http), "--rtmp-port", str(rtmp), "--data-dir",
                                         str(workdir / "data"), "--admin-token", ADMIN, "--ladder", "source",
                                         "--log-level", "warning"],
                     workdir / "node.log", ADMIN, cwd=ROOT)


def publish(rtmp_url: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                             "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
                             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
                             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50",
                             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-f", "flv", rtmp_url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_parts(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if b"#EXT-X-PART:" in resp.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never listed parts")


def phase(node: BenchNode, master: str, seconds: float, concurrency: int, idle: float) -> dict[str, float]:
    """Node CPU seconds per request for one load phase, its idle rate subtracted."""
    pid = node.proc.pid
    cpu0, t0 = own_cpu_seconds(pid), time.monotonic()
    time.sleep(idle)
    idle_rate = (own_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    cpu0, t0 = own_cpu_seconds(pid), time.monotonic()
    out = subprocess.run([sys.executable, __file__, "_load", "--master", master, "--seconds", str(seconds),
                          "--concurrency", str(concurrency)], capture_output=True, check=True, cwd=ROOT)
    cpu, wall = own_cpu_seconds(pid) - cpu0, time.monotonic() - t0
    result = json.loads(out.stdout)
    requests = sum(result["counts"].values())
    refused = requests - result["counts"].get("200", 0)
    load_cpu = max(0.0, cpu - idle_rate * wall)
    return {"per_request_us": load_cpu / requests * 1e6, "requests": requests, "rps": requests / result["wall"],
            "not_200": refused, "node_cores": cpu / wall, "idle_cores": idle_rate}


def micro() -> str:
    """The gate's own steps, timed in this process (no HTTP): what a restricted request adds."""
    import timeit

    from broadcaster.playback.grants import (AccessState, GrantReader, ObjectSigner, authorize_playlist, grant_key,
                                             issue_grant)
    from broadcaster.playback.rewrite import sign_objects
    from ingest.hls.playlist import MediaPlaylist, RenditionReport

    secret, now = b"k" * 32, time.time()
    reader, state = GrantReader(grant_key(secret)), AccessState(gated=True, epoch=0, banned=frozenset({"v_x"}))
    query = {"grant": issue_grant(secret, "b" * 32, "v_1", 0, now + 3600)}
    signer = ObjectSigner(secret, "b" * 32, 0)
    value = signer.sign("source/s10.p1.m4s", int(now) + 120)
    playlist = MediaPlaylist(target_duration=2.0, window=6, part_target=0.5)
    playlist.map_uri = "init0.mp4"
    for msn in range(8):
        for index in range(4):
            playlist.add_part(0.5, f"s{msn}.p{index}.m4s", independent=index == 0)
        playlist.add(2.0, f"s{msn}.m4s")
    text = playlist.render("s8.p0.m4s", [RenditionReport("../audio/index.m3u8", 7, 3)])

    def per_call(fn, n: int) -> float:
        return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6

    grant = per_call(lambda: authorize_playlist(reader, state, "b" * 32, query, now), 20_000)
    obj = per_call(lambda: signer.check("source/s10.p1.m4s", value, now), 20_000)
    rewrite = per_call(lambda: sign_objects(text, lambda uri: signer.sign(uri, int(now) + 120), "s"), 500)
    return (f"gate steps (this process): grant check {grant:.1f} us (a grant already opened once), object signature check {obj:.1f} us, "
            f"media playlist signing {rewrite:.0f} us (once per playlist version and bucket, then cached)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=6.0, help="load per phase")
    parser.add_argument("--concurrency", type=int, default=8, help="viewer cycles in flight")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds of idle CPU measured before each phase")
    args = parser.parse_args()
    media_seconds = args.rounds * 2 * (args.seconds + args.idle + 2) + 60
    with tempfile.TemporaryDirectory(prefix="onair-bench-playback-") as tmp:
        node = start_node(Path(tmp))
        publishers: list[subprocess.Popen[bytes]] = []
        try:
            _, public = node.request("POST", "/api/broadcasts", {"title": "public", "visibility": "public"})
            _, restricted = node.request("POST", "/api/broadcasts", {"title": "restricted", "visibility": "restricted"})
            assert isinstance(public, dict) and isinstance(restricted, dict)
            for doc in (public, restricted):
                publishers.append(publish(f"rtmp://127.0.0.1:{node.rtmp_port}/live/{doc['stream_key']}", media_seconds))
            _, token = node.request("POST", f"/api/broadcasts/{restricted['id']}/viewer-tokens", {"name": "bench"})
            assert isinstance(token, dict)
            masters = {"public": f"{node.base}/hls/{public['id']}/master.m3u8", "restricted": token["hls_url"]}
            wait_parts(f"{node.base}/hls/{public['id']}/source/index.m3u8")
            wait_parts(token["hls_url"].replace("master.m3u8", "source/index.m3u8"))
            time.sleep(3)  # a few segments in the window
            print(micro())
            print(f"machine: {machine()}; {args.rounds} rounds x {args.seconds:g} s per phase, "
                  f"{args.concurrency} viewer cycles in flight; node main-process CPU per request, idle subtracted")
            figures: dict[str, list[float]] = {"public": [], "restricted": []}
            ratios = []
            for n in range(args.rounds):
                order = ("public", "restricted") if n % 2 == 0 else ("restricted", "public")
                round_figures = {}
                for kind in order:
                    result = phase(node, masters[kind], args.seconds, args.concurrency, args.idle)
                    round_figures[kind] = result["per_request_us"]
                    figures[kind].append(result["per_request_us"])
                    print(f"round {n + 1} {kind:10s} {result['per_request_us']:7.1f} us/request  "
                          f"{result['rps']:6.0f} req/s  node {result['node_cores']:.2f} cores "
                          f"(idle {result['idle_cores']:.3f})  not 200: {result['not_200']}", flush=True)
                ratios.append(round_figures["restricted"] / round_figures["public"])
            print(f"median us/request: public {median(figures['public']):.1f}, "
                  f"restricted {median(figures['restricted']):.1f}; median per-round ratio restricted/public "
                  f"{median(ratios):.3f} (target <= 1.10)")
        finally:
            for publisher in publishers:
                publisher.terminate()
                publisher.wait()
            node.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_load":
        sub = argparse.ArgumentParser()
        sub.add_argument("_load")
        sub.add_argument("--master", required=True)
        sub.add_argument("--seconds", type=float, required=True)
        sub.add_argument("--concurrency", type=int, required=True)
        sys.exit(load(sub.parse_args()))
    main()
