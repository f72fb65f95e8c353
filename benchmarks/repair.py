"""The media repair stage's cost on the node's event loop: CPU per unit, next to the work already done there.

Every unit a publisher sends passes ``ingest.repair.MediaRepair.push`` in the
node's main process (asyncio), before the pipeline writes it to the worker as
FLV (``ingest.flv.encode_unit``, the reference: work of the same kind, on the
same units, that the loop did before the stage existed).  One process, one
thread, ``time.thread_time`` around each pass, alternating stage and reference
for several rounds; printed: CPU microseconds per unit of each, the median of
per-round ratios, and the stage's share of a core per 30 fps stream.

    python -m benchmarks.repair --seconds 30 --rounds 5

Streams: ``clean`` (x264 with B-frames through ffmpeg: timestamps right, only
the checks run) and ``flvmux`` (the same units broken the way GStreamer's flvmux
breaks them under load: composition offsets 0, a duplicate decoding time every
fifth frame, ±15 ms of jitter, non-IDR frames flagged as keyframes: every
repair path runs).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._measure import machine  # noqa: E402
from ingest import flv  # noqa: E402
from ingest.media import MediaKind, MediaUnit  # noqa: E402
from ingest.repair import MediaRepair  # noqa: E402
from tests.ingest.flvfile import read_units  # noqa: E402


def encode(seconds: int, size: str) -> list[MediaUnit]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "src.flv"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
                        "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "60", "-pix_fmt", "yuv420p",
                        "-c:a", "aac", "-f", "flv", str(path)], check=True)
        return read_units(path.read_bytes())


def flvmux_like(units: list[MediaUnit], seed: int = 13) -> list[MediaUnit]:
    rng = random.Random(seed)
    out, previous, count = [], 0, 0
    for unit in units:
        if unit.config:
            out.append(unit)
            continue
        if unit.kind is MediaKind.VIDEO:
            count += 1
            dts = previous if count % 5 == 0 else max(0, unit.dts + rng.randint(-15, 15))
            unit = replace(unit, dts=dts, cts=0, keyframe=unit.keyframe or count % 7 == 0)
            previous = dts
        out.append(unit)
    return out


def repair_pass(units: list[MediaUnit]) -> float:
    stage = MediaRepair()
    start = time.thread_time()
    for unit in units:
        stage.push(unit)
        stage.take_repairs()
    stage.flush()
    return time.thread_time() - start


def reference_pass(units: list[MediaUnit]) -> float:
    start = time.thread_time()
    for unit in units:
        flv.encode_unit(unit)
    return time.thread_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    clean = encode(args.seconds, args.size)
    streams = {"clean": clean, "flvmux": flvmux_like(clean)}
    print(f"{machine()}; {len(clean)} units ({args.seconds} s of {args.size} x264 B-frames + AAC), "
          f"{args.rounds} rounds")
    for name, units in streams.items():
        stage, reference = [], []
        for _ in range(args.rounds):
            stage.append(repair_pass(units))
            reference.append(reference_pass(units))
        per_unit = statistics.median(stage) / len(units) * 1e6
        ref_unit = statistics.median(reference) / len(units) * 1e6
        ratio = statistics.median(s / r for s, r in zip(stage, reference))
        core = statistics.median(stage) / args.seconds
        print(f"{name:7s} repair {per_unit:6.1f} µs/unit   flv.encode_unit {ref_unit:5.1f} µs/unit   "
              f"ratio {ratio:5.1f}   repair per 30 fps stream: {core * 100:.3f} % of a core")


if __name__ == "__main__":
    main()
