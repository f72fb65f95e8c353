"""Test helper: check an HLS output directory with the m3u8 package and ffprobe."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import m3u8


def ffprobe_path() -> str:
    path = shutil.which("ffprobe")
    if path is None:
        raise RuntimeError("ffprobe is required")
    return path


@dataclass
class SegmentProbe:
    duration: float
    start: float
    codecs: set[str]
    first_video_keyframe: bool
    first_video_pts: float
    video_size: tuple[int, int]
    #: (profile name, level_idc) as ffprobe reads them from the SPS
    video_profile: tuple[str, int]


def probe_segment(path: Path) -> SegmentProbe:
    out = subprocess.run(
        [ffprobe_path(), "-v", "error", "-show_format", "-show_streams", "-show_packets", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    info = json.loads(out)
    streams = {s["index"]: s for s in info["streams"]}
    video_index = next(i for i, s in streams.items() if s["codec_type"] == "video")
    video_packets = [p for p in info["packets"] if p["stream_index"] == video_index]
    first = video_packets[0]
    video = streams[video_index]
    return SegmentProbe(
        duration=float(info["format"]["duration"]),
        start=float(info["format"]["start_time"]),
        codecs={s["codec_name"] for s in streams.values()},
        first_video_keyframe=first["flags"].startswith("K"),
        first_video_pts=min(float(p["pts_time"]) for p in video_packets),
        video_size=(int(video["width"]), int(video["height"])),
        video_profile=(str(video.get("profile")), int(video.get("level", -1))),
    )


def load_media(path: Path) -> m3u8.M3U8:
    return m3u8.loads(path.read_text())
