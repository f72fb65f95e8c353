"""The rendition ladder: which outputs a broadcast gets, and parsing it from config.

Pure functions, no I/O.  A ladder is an ordered list of :class:`Rendition`;
``select_for_source`` trims it to what makes sense for one source (never
upscale, passthrough only for H.264).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

PASSTHROUGH_NAME = "source"

#: Video bitrate (bps) for the usual rungs; other heights are scaled by pixel count.
_STANDARD_BITRATES = {1080: 5_000_000, 720: 2_800_000, 480: 1_400_000, 360: 800_000, 240: 400_000}
_MIN_HEIGHT = 64
_MAX_HEIGHT = 4320
_NAME_RE = re.compile(r"(\d+)p(?:@(\d+)(k|m)?)?")


@dataclass(frozen=True)
class Rendition:
    name: str
    passthrough: bool
    height: int | None
    video_bitrate: int | None  # bps; None for passthrough
    preset: str = "veryfast"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rendition:
        return cls(
            name=str(data["name"]),
            passthrough=bool(data["passthrough"]),
            height=None if data.get("height") is None else int(data["height"]),
            video_bitrate=None if data.get("video_bitrate") is None else int(data["video_bitrate"]),
            preset=str(data.get("preset", "veryfast")),
        )


def default_bitrate(height: int) -> int:
    """A sensible H.264 bitrate for a rung of this height (30 fps-ish content)."""
    if height in _STANDARD_BITRATES:
        return _STANDARD_BITRATES[height]
    # 720p at 2.8 Mbps scaled by pixel count, rounded to 100 kbps, at least 200 kbps
    scaled = 2_800_000 * (height * height) / (720 * 720)
    return max(200_000, int(round(scaled / 100_000)) * 100_000)


def transcoded(height: int, video_bitrate: int | None = None, preset: str = "veryfast") -> Rendition:
    return Rendition(f"{height}p", False, height, video_bitrate or default_bitrate(height), preset)


def passthrough() -> Rendition:
    return Rendition(PASSTHROUGH_NAME, True, None, None)


def default_ladder() -> list[Rendition]:
    return [passthrough(), transcoded(1080), transcoded(720), transcoded(480), transcoded(360)]


def parse_ladder(spec: str) -> list[Rendition]:
    """Parse ``"source,720p,360p"`` (optionally ``"720p@2500k"``) into a ladder.

    Raises ValueError with an exact message for an empty spec, an unknown
    rendition name, a height out of range or a duplicate.
    """
    names = [part.strip() for part in spec.split(",")]
    if not any(names):
        raise ValueError("ladder spec is empty")
    ladder: list[Rendition] = []
    seen: set[str] = set()
    for name in names:
        if not name:
            raise ValueError(f"empty rendition name in ladder spec {spec!r}")
        if name == PASSTHROUGH_NAME:
            rendition = passthrough()
        else:
            match = _NAME_RE.fullmatch(name)
            if match is None:
                raise ValueError(f"bad rendition {name!r} in ladder spec: expected 'source' or '<height>p' (e.g. '720p' or '720p@2500k')")
            height = int(match.group(1))
            if height < _MIN_HEIGHT or height > _MAX_HEIGHT or height % 2:
                raise ValueError(f"bad rendition {name!r} in ladder spec: height must be even and between {_MIN_HEIGHT} and {_MAX_HEIGHT}")
            bitrate = None
            if match.group(2) is not None:
                unit = {None: 1, "k": 1000, "m": 1_000_000}[match.group(3)]
                bitrate = int(match.group(2)) * unit
                if bitrate < 50_000:
                    raise ValueError(f"bad rendition {name!r} in ladder spec: bitrate must be at least 50k")
            rendition = transcoded(height, bitrate)
        if rendition.name in seen:
            raise ValueError(f"duplicate rendition {rendition.name!r} in ladder spec")
        seen.add(rendition.name)
        ladder.append(rendition)
    return ladder


def select_for_source(ladder: list[Rendition], src_width: int, src_height: int, src_codec: str) -> list[Rendition]:
    """The renditions of ``ladder`` worth producing for this source.

    Transcoded rungs must be strictly below the source height (never upscale;
    a rung at the source height would cost CPU for a copy's quality); the
    passthrough rung needs an H.264 source.  If that leaves nothing, one
    transcoded rung at the source height keeps the broadcast watchable.
    """
    selected: list[Rendition] = []
    for rendition in ladder:
        if rendition.passthrough:
            if src_codec == "h264":
                selected.append(rendition)
        elif rendition.height is not None and rendition.height < src_height:
            selected.append(rendition)
    if not selected:
        height = src_height - (src_height % 2)
        rungs = [r for r in ladder if not r.passthrough]
        preset = rungs[0].preset if rungs else "veryfast"
        selected.append(transcoded(height, preset=preset))
    return selected


def scaled_width(src_width: int, src_height: int, height: int) -> int:
    """Width keeping the source aspect ratio, rounded to an even number (4:2:0)."""
    width = int(round(src_width * height / src_height / 2)) * 2
    return max(2, width)


# (level_idc, MaxFS macroblocks, MaxMBPS macroblocks/s, MaxBR kbps for Baseline/Main)
_H264_LEVELS = [
    (10, 99, 1485, 64), (11, 396, 3000, 192), (12, 396, 6000, 384), (13, 396, 11880, 768),
    (20, 396, 11880, 2000), (21, 792, 19800, 4000), (22, 1620, 20250, 4000), (30, 1620, 40500, 10000),
    (31, 3600, 108000, 14000), (32, 5120, 216000, 20000), (40, 8192, 245760, 20000), (41, 8192, 245760, 50000),
    (42, 8704, 522240, 50000), (50, 22080, 589824, 135000), (51, 36864, 983040, 240000), (52, 36864, 2073600, 240000),
]


def h264_level(width: int, height: int, fps: float, max_bitrate: int, high_profile: bool = True) -> int:
    """The smallest H.264 level_idc (Annex A) that fits a stream, e.g. 31 for 720p30.

    Chosen up front so the master playlist's CODECS is known before the
    encoder has produced a byte.
    """
    frame_mbs = ((width + 15) // 16) * ((height + 15) // 16)
    factor = 1.25 if high_profile else 1.0  # cpbBrVclFactor 1250 vs 1000
    for level, max_fs, max_mbps, max_br in _H264_LEVELS:
        if frame_mbs <= max_fs and frame_mbs * fps <= max_mbps and max_bitrate <= max_br * 1000 * factor:
            return level
    return 52
