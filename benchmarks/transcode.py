"""CPU per media second of the default ladder: onair's transcode worker vs the ffmpeg CLI, side by side.

Issue 6, acceptance point 4.  Both get the same H.264/AAC FLV file (testsrc2
at ``--size``, 30 fps, ~6 Mbps, keyframe every 2 s, made once by the ffmpeg
CLI) as fast as they take it, and produce the ladder ``select_for_source``
picks from ``default_ladder()`` for that source (for 1080p: source passthrough
+ 720p/480p/360p) as MPEG-TS HLS with 2 s segments, audio copied into every
rendition:

- onair: ``python -m ingest.transcode.worker`` with the FLV on stdin;
- ffmpeg: one process, ``-filter_complex split/scale``, libx264 with the same
  preset, bitrate, maxrate/bufsize, profile/level, ``scenecut=0`` and an IDR on
  every source keyframe as onair's rungs, one ``hls`` muxer with
  ``var_stream_map``.

Rounds alternate (onair, ffmpeg), then (ffmpeg, onair), ... .  CPU is the
child's whole rusage (``RUSAGE_CHILDREN`` delta around one child: every thread,
decoder and encoders included); wall time runs from spawn to exit, so onair
pays its interpreter start-up.  Printed: the medians of each, the median of
the per-round CPU ratios, and the number of concurrent broadcasts of this
source the machine keeps in real time, estimated as cores / CPU-per-media-
second, and with ``--concurrent N`` measured: N copies at once, each must
reach a realtime factor >= 1.

    python benchmarks/transcode.py --seconds 8 --rounds 2 --size 1920x1080
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._measure import machine, median  # noqa: E402
from ingest.transcode.ladder import (  # noqa: E402
    Rendition,
    default_ladder,
    h264_level,
    scaled_width,
    select_for_source,
)

FPS = 30
SEGMENT_SECONDS = 2.0
SOURCE_BITRATE = "6000k"


@dataclass(frozen=True)
class Run:
    cpu: float  # CPU seconds, whole child
    wall: float
    media: float

    @property
    def cpu_per_media(self) -> float:
        return self.cpu / self.media

    @property
    def realtime(self) -> float:
        return self.media / self.wall


def make_source(path: Path, size: str, seconds: float) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-b:v", SOURCE_BITRATE,
                    "-maxrate", SOURCE_BITRATE, "-bufsize", "12000k", "-g", str(2 * FPS), "-keyint_min", str(2 * FPS),
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv", str(path)], check=True)


def probe_media_seconds(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return float(json.loads(out)["format"]["duration"])


def ladder_for(width: int, height: int) -> list[Rendition]:
    return select_for_source(default_ladder(), width, height, "h264")


# --- the two commands --------------------------------------------------------

#: "lowlatency" (onair's default: CMAF parts of 0.5 s, audio once; ffmpeg writes fMP4 HLS, which has
#: no parts: its closest equivalent) or "mpegts"
VARIANT = {"name": "lowlatency"}


def onair_command(out_dir: Path, ladder: list[Rendition]) -> list[str]:
    config = {"out_dir": str(out_dir), "renditions": [r.to_dict() for r in ladder],
              "segment_target": SEGMENT_SECONDS, "low_latency": VARIANT["name"] == "lowlatency", "part_target": 0.5}
    return [sys.executable, "-m", "ingest.transcode.worker", json.dumps(config)]


def ffmpeg_command(source: Path, out_dir: Path, ladder: list[Rendition], width: int, height: int) -> list[str]:
    """One ffmpeg process doing what the worker does, with the worker's encoder settings."""
    rungs = [r for r in ladder if not r.passthrough]
    labels = [f"v{r.height}" for r in rungs]
    graph = f"[0:v]split={len(rungs)}" + "".join(f"[s{i}]" for i in range(len(rungs)))
    for i, (rung, label) in enumerate(zip(rungs, labels)):
        graph += f";[s{i}]scale={scaled_width(width, height, rung.height or height)}:{rung.height}" \
                 f":flags=bicubic,format=yuv420p[{label}]"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(source),
           "-filter_complex", graph]
    index = 0
    stream_map = []
    for rendition in ladder:
        if rendition.passthrough:
            cmd += ["-map", "0:v:0", f"-c:v:{index}", "copy"]
        else:
            assert rendition.height is not None and rendition.video_bitrate is not None
            bitrate = rendition.video_bitrate
            w = scaled_width(width, height, rendition.height)
            level = h264_level(w, rendition.height, FPS, int(bitrate * 1.2))
            cmd += ["-map", f"[v{rendition.height}]", f"-c:v:{index}", "libx264",
                    f"-preset:v:{index}", rendition.preset, f"-profile:v:{index}", "high",
                    f"-level:v:{index}", f"{level // 10}.{level % 10}",
                    f"-b:v:{index}", str(bitrate), f"-maxrate:v:{index}", str(int(bitrate * 1.2)),
                    f"-bufsize:v:{index}", str(bitrate * 2), f"-g:v:{index}", str(FPS * 10),
                    f"-x264-params:v:{index}", "scenecut=0", f"-force_key_frames:v:{index}", "source"]
        stream_map.append(f"v:{index},a:{index},name:{rendition.name}")
        index += 1
    for _ in ladder:
        cmd += ["-map", "0:a:0"]
    fmp4 = VARIANT["name"] == "lowlatency"
    if fmp4:
        cmd += ["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"]
    cmd += ["-c:a", "copy", "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod",
            "-hls_segment_filename", str(out_dir / "%v" / ("s%d.m4s" if fmp4 else "%d.ts")),
            "-master_pl_name", "master.m3u8",
            "-var_stream_map", " ".join(stream_map), str(out_dir / "%v" / "index.m3u8")]
    return cmd


# --- running ------------------------------------------------------------------

def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_many(commands: list[tuple[list[str], Path | None]], media: float) -> list[Run]:
    """Start every command at once (stdin from the file, or none); wait for all.

    CPU is the RUSAGE_CHILDREN delta, so nothing else may be reaped meanwhile;
    for several commands it is split evenly (same work each)."""
    cpu0 = _children_cpu()
    start = time.perf_counter()
    procs = []
    for cmd, stdin_path in commands:
        stdin = open(stdin_path, "rb") if stdin_path is not None else subprocess.DEVNULL  # noqa: SIM115
        procs.append((subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE), stdin))
    walls = []
    for proc, stdin in procs:
        out, err = proc.communicate()
        walls.append(time.perf_counter() - start)
        if stdin is not subprocess.DEVNULL:
            stdin.close()  # type: ignore[union-attr]
        if proc.returncode != 0:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
        check_events(out)
    cpu = (_children_cpu() - cpu0) / len(procs)
    return [Run(cpu, wall, media) for wall in walls]


def check_events(stdout: bytes) -> None:
    """The worker's JSON events: no error line (ffmpeg prints nothing on stdout)."""
    for line in stdout.decode().splitlines():
        event = json.loads(line)
        if event.get("event") == "error":
            raise RuntimeError(f"worker error: {event.get('message')}")


def segments(out_dir: Path, ladder: list[Rendition]) -> dict[str, int]:
    """Complete segments per rendition (LL parts ``s<n>.p<i>.m4s`` are not segments)."""
    pattern = re.compile(r"^s?\d+\.(ts|m4s)$")
    return {r.name: sum(1 for f in (out_dir / r.name).iterdir() if pattern.match(f.name)) for r in ladder}


def run_onair(source: Path, work: Path, ladder: list[Rendition], media: float, copies: int = 1) -> list[Run]:
    dirs = [Path(tempfile.mkdtemp(prefix="onair-", dir=work)) for _ in range(copies)]
    runs = run_many([(onair_command(d, ladder), source) for d in dirs], media)
    counts = segments(dirs[0], ladder)
    for d in dirs:
        shutil.rmtree(d)
    _check_counts("onair", counts, media)
    return runs


def run_ffmpeg(source: Path, work: Path, ladder: list[Rendition], width: int, height: int, media: float,
               copies: int = 1) -> list[Run]:
    dirs = [Path(tempfile.mkdtemp(prefix="ffmpeg-", dir=work)) for _ in range(copies)]
    runs = run_many([(ffmpeg_command(source, d, ladder, width, height), None) for d in dirs], media)
    counts = segments(dirs[0], ladder)
    for d in dirs:
        shutil.rmtree(d)
    _check_counts("ffmpeg", counts, media)
    return runs


def _check_counts(who: str, counts: dict[str, int], media: float) -> None:
    expected = -(-int(round(media)) // int(SEGMENT_SECONDS))
    if set(counts.values()) != {expected}:
        raise RuntimeError(f"{who}: expected {expected} segments per rendition, got {counts}")


# --- main ---------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="media seconds of the source clip")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", default="1920x1080", help="source WxH (30 fps)")
    parser.add_argument("--variant", choices=["lowlatency", "mpegts"], default="lowlatency",
                        help="HLS packaging (onair LL-HLS parts vs ffmpeg fMP4 HLS, or MPEG-TS for both)")
    parser.add_argument("--concurrent", type=int, default=0,
                        help="also run N copies at once of each and report their realtime factors (0: skip)")
    args = parser.parse_args()
    VARIANT["name"] = args.variant
    width, height = (int(v) for v in args.size.lower().split("x"))
    ladder = ladder_for(width, height)
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory(prefix="onair-transcode-bench-") as tmp:
        work = Path(tmp)
        source = work / "source.flv"
        make_source(source, args.size, args.seconds)
        media = probe_media_seconds(source)
        print(f"machine: {machine()}; ffmpeg CLI: {ffmpeg_version()}")
        print(f"source: {args.size}@{FPS} H.264 {SOURCE_BITRATE} + AAC, {media:.2f} s; ladder: "
              + ", ".join(f"{r.name}" + ("" if r.passthrough else f" {r.video_bitrate // 1000}k {r.preset}")
                          for r in ladder) + f"; HLS {SEGMENT_SECONDS:g} s segments ({args.variant}), audio copied")
        onair: list[Run] = []
        ffmpeg: list[Run] = []
        ratios: list[float] = []
        for round_no in range(args.rounds):
            order = ["onair", "ffmpeg"] if round_no % 2 == 0 else ["ffmpeg", "onair"]
            got: dict[str, Run] = {}
            for who in order:
                if who == "onair":
                    got[who] = run_onair(source, work, ladder, media)[0]
                else:
                    got[who] = run_ffmpeg(source, work, ladder, width, height, media)[0]
            onair.append(got["onair"])
            ffmpeg.append(got["ffmpeg"])
            ratios.append(got["onair"].cpu / got["ffmpeg"].cpu)
            print(f"round {round_no + 1}: onair {got['onair'].cpu_per_media:.3f} CPU s/media s, "
                  f"{got['onair'].realtime:.2f}x real time | ffmpeg {got['ffmpeg'].cpu_per_media:.3f} CPU s/media s, "
                  f"{got['ffmpeg'].realtime:.2f}x real time | CPU ratio {ratios[-1]:.3f}")

        print()
        print(f"{'':8} {'CPU s / media s':>16} {'realtime factor':>16} {'est. concurrent (cores/CPU)':>28}")
        for name, runs in (("onair", onair), ("ffmpeg", ffmpeg)):
            cpu = median([r.cpu_per_media for r in runs])
            rt = median([r.realtime for r in runs])
            print(f"{name:8} {cpu:16.3f} {rt:15.2f}x {cores / cpu:21.2f} (= {int(cores / cpu)})")
        print(f"median of per-round CPU ratios onair/ffmpeg: {median(ratios):.3f} (target <= 1.05)")

        if args.concurrent > 0:
            n = args.concurrent
            print()
            for name in ("onair", "ffmpeg"):
                if name == "onair":
                    runs = run_onair(source, work, ladder, media, copies=n)
                else:
                    runs = run_ffmpeg(source, work, ladder, width, height, media, copies=n)
                slowest = min(r.realtime for r in runs)
                verdict = "keeps up" if slowest >= 1.0 else "falls behind"
                print(f"{n} concurrent {name}: slowest {slowest:.2f}x real time ({verdict}), "
                      f"{runs[0].cpu_per_media:.3f} CPU s/media s each")
    return 0


def ffmpeg_version() -> str:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-version"], capture_output=True, text=True).stdout
    return out.split("\n")[0].split(" Copyright")[0].removeprefix("ffmpeg version ")


if __name__ == "__main__":
    sys.exit(main())
