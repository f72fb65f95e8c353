"""Test helper: read an FLV file made by the ffmpeg CLI into MediaUnits.

The publisher edges produce units from RTMP; tests of the pipeline don't need
RTMP, so they read the same tag bodies from a file with ``ingest.flv``.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

from ingest import flv
from ingest.media import MediaUnit


def read_units(data: bytes) -> list[MediaUnit]:
    if data[:3] != b"FLV":
        raise ValueError("not an FLV file")
    offset = struct.unpack(">I", data[5:9])[0] + 4  # header + PreviousTagSize0
    units: list[MediaUnit] = []
    while offset + 11 <= len(data):
        tag_type = data[offset]
        size = int.from_bytes(data[offset + 1:offset + 4], "big")
        timestamp = int.from_bytes(data[offset + 4:offset + 7], "big") | (data[offset + 7] << 24)
        body = data[offset + 11:offset + 11 + size]
        offset += 11 + size + 4
        if tag_type == flv.TAG_VIDEO:
            unit = flv.parse_video_body(timestamp, body)
        elif tag_type == flv.TAG_AUDIO:
            unit = flv.parse_audio_body(timestamp, body)
        else:
            continue
        if unit is not None:
            units.append(unit)
    return units


def make_flv(path: Path, *, size: str = "320x240", rate: int = 25, seconds: float = 6, gop: int | None = None,
             audio: bool = True, x264: tuple[str, ...] = ("-preset", "ultrafast"), audio_rate: int = 44100,
             channels: int | None = None) -> Path:
    """An H.264/AAC FLV from lavfi test sources (keyframe every second by default; ``x264``: encoder options,
    e.g. ``("-preset", "veryfast", "-bf", "2")`` for B-frames)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg CLI is required")
    cmd = [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={audio_rate}"]
    cmd += ["-t", str(seconds), "-c:v", "libx264", *x264, "-g", str(gop or rate), "-pix_fmt", "yuv420p"]
    if audio:
        cmd += ["-c:a", "aac", "-b:a", "64k", *(["-ac", str(channels)] if channels else [])]
    cmd += ["-f", "flv", str(path)]
    subprocess.run(cmd, check=True)
    return path
