"""Making a recording's MP4: onair's PyAV remux of the replay vs the ffmpeg CLI copying the same HLS.

A replay is made once by the real packager (``HlsPipeline`` and its transcode worker, LL-HLS, ladder
``source,240p``) from an x264/AAC FLV fed twice with a publisher reconnect between (so one
discontinuity and two init sections).  Then, alternating for several rounds:

- onair: ``broadcaster.recordings.remux.remux`` (top rendition + the audio rendition → one MP4,
  ``+faststart``), in this process; CPU from ``time.process_time``;
- reference: ``ffmpeg -i <top rendition>/index.m3u8 -i audio/index.m3u8 -map 0:v -map 1:a -c copy
  -movflags +faststart``; CPU of the child from ``resource.getrusage(RUSAGE_CHILDREN)``.

Printed: CPU and wall seconds per media second of each (medians), the median of per-round ratios,
and each output's duration next to the replay's (the reference does not shift generations onto the
playlist's timeline, so its duration may differ).

    python -m benchmarks.recording_remux --seconds 60 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._measure import machine  # noqa: E402
from broadcaster.recordings.remux import remux  # noqa: E402
from ingest.pipeline import HlsPipeline, PipelineOptions  # noqa: E402
from ingest.transcode.ladder import parse_ladder  # noqa: E402
from tests.ingest.flvfile import read_units  # noqa: E402


def make_replay(root: Path, seconds: int) -> None:
    src = root / "src.flv"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds // 2),
                    "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p",
                    "-b:v", "3M", "-c:a", "aac", "-f", "flv", str(src)], check=True)
    units = read_units(src.read_bytes())

    async def run() -> None:
        pipeline = HlsPipeline("bench", root / "hls", PipelineOptions(parse_ladder("source,240p"), segment_target=2.0,
                                                                       low_latency=True))
        await pipeline.start()
        try:
            loop = asyncio.get_running_loop()
            for half in range(2):
                start = loop.time()
                for unit in units:
                    # at twice real time: the worker keeps up (nothing dropped), the replay is made sooner
                    delay = start + unit.dts / 1000 / 2 - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    pipeline.feed(unit)
                if half == 0:
                    pipeline.mark_discontinuity()
            await pipeline.finish()
        finally:
            await pipeline.close()

    asyncio.run(run())


def duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json", str(path)], capture_output=True,
                         check=True).stdout
    return float(json.loads(out)["format"]["duration"])


def onair(hls: Path, out: Path) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    remux(hls, out)
    return time.process_time() - cpu, time.perf_counter() - wall


def reference(hls: Path, out: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-allowed_extensions", "ALL", "-i",
                    str(hls / "source" / "index.m3u8"), "-allowed_extensions", "ALL", "-i",
                    str(hls / "audio" / "index.m3u8"), "-map", "0:v", "-map", "1:a", "-c", "copy",
                    "-movflags", "+faststart", str(out)], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(machine(), f"load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_replay(root, args.seconds)
        hls = root / "hls"
        text = (hls / "source" / "index.m3u8").read_text()
        media = sum(float(line.split(":")[1].rstrip(",")) for line in text.splitlines() if line.startswith("#EXTINF"))
        results: dict[str, list[tuple[float, float]]] = {"onair": [], "ffmpeg": []}
        ratios = []
        for _ in range(args.rounds):
            a = onair(hls, root / "onair.mp4")
            b = reference(hls, root / "ffmpeg.mp4")
            results["onair"].append(a)
            results["ffmpeg"].append(b)
            ratios.append(a[0] / b[0] if b[0] else float("nan"))
        print(f"replay: {media:.2f} s of media (1280x720 30 fps ~3 Mbit/s + AAC, one discontinuity), "
              f"{sum(f.stat().st_size for f in (hls / 'source').iterdir()) / 1e6:.1f} MB in the top rendition")
        for name, rows in results.items():
            cpu = statistics.median(r[0] for r in rows)
            wall = statistics.median(r[1] for r in rows)
            out = root / f"{name}.mp4"
            print(f"{name:7s} CPU {cpu:.3f} s ({cpu / media * 1000:.2f} ms per media second), wall {wall:.3f} s, "
                  f"output {out.stat().st_size / 1e6:.1f} MB, duration {duration(out):.3f} s")
        print(f"CPU ratio onair/ffmpeg, median of rounds: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
