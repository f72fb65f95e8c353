"""Publisher conformance: the publishers, and running them all at once against one real node.

Shared by ``tests/e2e/test_publishers.py`` (which asserts) and
``benchmarks/publishers.py`` (which prints).  :func:`run_cases` starts every
publisher at once (that is the load), waits for them, reads each broadcast's
transcoder figures from the API while it is ``reconnecting``, ends them all,
and decodes each replay with ffmpeg as a plain HLS client.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.node import NodeProcess
from tests.support.publish import ffmpeg_command, gst_command


@dataclass
class Case:
    name: str
    #: the publisher's command, given the RTMP URL and a path it may record what it sent to
    command: Callable[[str, Path], list[str]]
    #: the published duration, seconds; None: measured from the recording
    seconds: float | None = None
    prepare: Callable[[Path], None] | None = None


@dataclass
class Outcome:
    case: Case
    exit_code: int
    log: str  # the publisher's output
    transcoder: dict[str, Any]  # live.transcoder of GET /api/broadcasts/<id>, after the publisher stopped
    decode_errors: str  # what `ffmpeg -v error -i <replay> -f null -` printed
    replay: float  # seconds of media decoded from the replay
    published: float


def packet_span(path: Path | str, stream: str = "v:0") -> float:
    """Seconds from the first to the end of the last packet of ``stream`` (pts order)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
                          "packet=pts_time,duration_time", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=120, check=True)
    packets = [p for p in json.loads(out.stdout).get("packets", []) if p.get("pts_time") not in (None, "N/A")]
    if not packets:
        return 0.0
    starts = [float(p["pts_time"]) for p in packets]
    return max(starts) - min(starts) + float(packets[-1].get("duration_time") or 0)


def decode_replay(master: str, audio: bool) -> tuple[str, float]:
    """Decode a replay as a plain HLS client: (ffmpeg's error output, seconds of media decoded)."""
    maps = ["-map", "0:v:0"] + (["-map", "0:a:0"] if audio else [])
    run = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", master, *maps, "-f", "null", "-",
                          "-progress", "pipe:1", "-nostats"], capture_output=True, text=True, timeout=180)
    times = [int(v) for v in re.findall(r"^out_time_us=(\d+)$", run.stdout, re.M)]
    errors = run.stderr.strip() if run.returncode == 0 else f"exit {run.returncode}: {run.stderr.strip()}"
    return errors, times[-1] / 1e6 if times else 0.0


def run_cases(node: NodeProcess, cases: list[Case], tmp_path: Path, timeout: float) -> list[Outcome]:
    docs = {case.name: node.create_broadcast(case.name) for case in cases}
    for case in cases:
        if case.prepare is not None:
            case.prepare(tmp_path)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {case.name: tmp_path / f"{case.name}.log" for case in cases}
    for case in cases:  # all at once: the node under load
        with logs[case.name].open("wb") as log:
            command = case.command(node.rtmp_url(docs[case.name]["stream_key"]), tmp_path / f"{case.name}.flv")
            procs[case.name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    deadline = time.monotonic() + timeout
    exit_codes = {}
    for name, proc in procs.items():
        try:
            exit_codes[name] = proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in procs.values():
                other.kill()
            raise AssertionError(f"publisher {name} did not finish in {timeout:.0f} s:\n{logs[name].read_text()[-2000:]}")
    transcoders = {case.name: node.wait_status(docs[case.name]["id"], "reconnecting", timeout=30)["live"]["transcoder"]
                   for case in cases}

    def end(case: Case) -> None:
        # the end waits for the worker to flush what it holds: slow on a loaded machine
        status, body = node.request("POST", f"/api/broadcasts/{docs[case.name]['id']}/end", timeout=90)
        assert status == 200, body

    def replay(case: Case) -> Outcome:
        path = f"/hls/{docs[case.name]['id']}/master.m3u8"
        body = node.request("GET", path, token=None)[1]
        errors, seconds = decode_replay(node.base + path, audio=isinstance(body, bytes) and b"AUDIO" in body)
        published = case.seconds if case.seconds is not None else packet_span(tmp_path / f"{case.name}.flv")
        return Outcome(case, exit_codes[case.name], logs[case.name].read_text(errors="replace"),
                       transcoders[case.name], errors, seconds, published)

    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        list(pool.map(end, cases))
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(replay, cases))


# --- the publishers ------------------------------------------------------------------

def _gst(sink: str, x264: tuple[str, ...], **options: Any) -> Callable[[str, Path], list[str]]:
    def command(url: str, record: Path) -> list[str]:
        return gst_command(url, sink=sink, x264=x264, seconds=30, record=str(record), **options)
    return command


#: all four at once on one node for 30 s: the load under which flvmux's timestamps go wrong
GSTREAMER = [
    # the pipeline (whatever raw format x264enc negotiates: High 4:4:4 10-bit), at 360p: at 720p, with
    # three more publishers and their workers on two cores, x264enc itself falls to ~14 fps and flushes its
    # backlog at the end under one timestamp, so what it published has no duration to compare with
    Case("rtmpsink-zerolatency", _gst("rtmpsink", ("tune=zerolatency",), video_format=None)),
    Case("rtmpsink-bframes", _gst("rtmpsink", ("bframes=2",), pattern="ball")),
    Case("rtmp2sink-zerolatency", _gst("rtmp2sink", ("tune=zerolatency",))),
    Case("rtmp2sink-bframes", _gst("rtmp2sink", ("bframes=2",), pattern="ball")),
]


def _ffmpeg(**options: Any) -> Callable[[str, Path], list[str]]:
    return lambda url, _record: ffmpeg_command(url, seconds=12, **options)


def _two_resolutions(tmp_path: Path) -> None:
    """6 s at 640x360 then 6 s at 480x270, one MPEG-TS: ffmpeg copies it to FLV with the second SPS in-band."""
    for name, size, offset in (("first", "640x360", 0), ("second", "480x270", 6)):
        subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6", "-c:v", "libx264",
                        "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac",
                        "-output_ts_offset", str(offset), "-f", "mpegts", str(tmp_path / f"{name}.ts")],
                       check=True, timeout=120)
    (tmp_path / "two-sizes.ts").write_bytes((tmp_path / "first.ts").read_bytes() + (tmp_path / "second.ts").read_bytes())


#: all eight at once for 12 s
FFMPEG = [
    Case("x264-bframes", _ffmpeg(x264=("-preset", "veryfast", "-bf", "3")), 12),
    Case("25fps", _ffmpeg(rate=25, gop=50), 12),
    Case("44.1kHz", _ffmpeg(audio_rate=44100), 12),
    Case("mono", _ffmpeg(channels=1), 12),
    # ffmpeg's FLV muxer keeps 31 bits of milliseconds: starting 7.5 s below 2^31 ms, the clock wraps mid-publish
    Case("timestamp-offset", _ffmpeg(extra=("-output_ts_offset", "2147476")), 12),
    Case("video-only", _ffmpeg(audio_rate=None), 12),
    Case("resolution-change", lambda url, _record: ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                                                    "-i", "two-sizes.ts", "-c", "copy", "-f", "flv", url],
         12, prepare=_two_resolutions),
    Case("4s-gop", _ffmpeg(gop=120), 12),
]
