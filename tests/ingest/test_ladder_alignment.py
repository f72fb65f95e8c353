"""Issue 6, acceptance point 1: the DEFAULT ladder on real 1080p30 and 480p sources.

A 1080p30 H.264/AAC source (ffmpeg CLI, keyframe every second) goes through
``HlsPipeline`` with ``default_ladder()`` unchanged (x264 ``veryfast``): it must
yield four video renditions (the 1080p ``source`` passthrough + 720p/480p/360p;
no 1080p rung, that would be a transcode at the source height) each carrying
the AAC audio, and every segment of every rendition must start with a keyframe
at the same media time, read back with ``ffprobe`` (first video packet in
decode order: its pts and its K flag).  A 480p source yields only the
passthrough and 360p: no 720p/1080p rung (never upscale).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import m3u8
import pytest

try:  # tests/ingest may or may not be a package
    from tests.ingest.flvfile import make_flv, read_units
    from tests.ingest.hlsprobe import ffprobe_path
except ImportError:
    from flvfile import make_flv, read_units  # type: ignore[no-redef]
    from hlsprobe import ffprobe_path  # type: ignore[no-redef]

from ingest.media import MediaUnit
from ingest.pipeline import HlsPipeline, PipelineOptions
from ingest.transcode.ladder import default_ladder
from ingest.transcode.segmenter import TS_OFFSET_MS

FPS = 30
SECONDS = 4
SEGMENT_TARGET = 2.0
TS_CLOCK = 90_000  # MPEG-TS pts ticks per second
ONE_FRAME = TS_CLOCK // FPS


@dataclass(frozen=True)
class SegmentVideo:
    first_pts: int  # 90 kHz ticks, first video packet in decode order
    first_is_key: bool
    min_pts: int
    keyframes: int
    size: tuple[int, int]
    codecs: frozenset[str]
    duration: float


def probe(path: Path) -> SegmentVideo:
    out = subprocess.run(
        [ffprobe_path(), "-v", "error", "-show_entries", "packet=stream_index,pts,flags:stream=index,codec_type,codec_name,width,height:format=duration",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    info = json.loads(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    packets = [p for p in info["packets"] if p["stream_index"] == video["index"]]
    assert packets, f"{path} has no video packets"
    return SegmentVideo(
        first_pts=int(packets[0]["pts"]),
        first_is_key=packets[0]["flags"].startswith("K"),
        min_pts=min(int(p["pts"]) for p in packets),
        keyframes=sum(p["flags"].startswith("K") for p in packets),
        size=(int(video["width"]), int(video["height"])),
        codecs=frozenset(s["codec_name"] for s in info["streams"]),
        duration=float(info["format"]["duration"]),
    )


def source_units(tmp_path_factory: pytest.TempPathFactory, size: str) -> list[MediaUnit]:
    # make_flv: testsrc2 + sine, libx264 ultrafast, keyframe every `rate` frames (1 s), AAC
    path = make_flv(tmp_path_factory.mktemp("src") / f"{size}.flv", size=size, rate=FPS, seconds=SECONDS)
    return read_units(path.read_bytes())


async def run_default_ladder(units: list[MediaUnit], root: Path) -> None:
    # The ultrafast testsrc2 source runs at ~16 Mbps: 4 s of it is about the default backlog bound (8 MiB),
    # and it is fed at once, so the bound is raised (the ladder itself stays the default).
    options = PipelineOptions(default_ladder(), segment_target=SEGMENT_TARGET, max_pending_bytes=64 << 20)
    pipeline = HlsPipeline("align", root, options)
    await pipeline.start()
    try:
        for unit in units:
            pipeline.feed(unit)
        await pipeline.finish()
    finally:
        await pipeline.close()
    assert pipeline.last_error is None, pipeline.last_error
    assert pipeline.stats.dropped_units == 0 and pipeline.stats.restarts == 0


def transcode(tmp_path_factory: pytest.TempPathFactory, size: str) -> Path:
    root = tmp_path_factory.mktemp("hls")
    # a plain event loop of its own: the output is shared by several tests, the run is the costly part
    asyncio.run(run_default_ladder(source_units(tmp_path_factory, size), root))
    return root


@pytest.fixture(scope="module")
def hls_1080p(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return transcode(tmp_path_factory, "1920x1080")


@pytest.fixture(scope="module")
def hls_480p(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return transcode(tmp_path_factory, "854x480")


def read_master(root: Path) -> dict[str, m3u8.Playlist]:
    master = m3u8.loads((root / "master.m3u8").read_text())
    assert master.is_variant
    return {variant.uri.split("/")[0]: variant for variant in master.playlists}


SIZES_1080P = {"source": (1920, 1080), "720p": (1280, 720), "480p": (854, 480), "360p": (640, 360)}


def test_1080p_source_yields_four_video_renditions_with_audio(hls_1080p: Path) -> None:
    variants = read_master(hls_1080p)
    assert list(variants) == list(SIZES_1080P)  # no 1080p rung: a transcode at the source height is a worse copy
    for name, variant in variants.items():
        info = variant.stream_info
        assert info.resolution == SIZES_1080P[name]
        assert info.bandwidth > 0 and info.average_bandwidth > 0
        video_codec, audio_codec = info.codecs.split(",")
        assert video_codec.startswith("avc1.") and audio_codec == "mp4a.40.2"
    assert not (hls_1080p / "1080p").exists()


def test_1080p30_master_reports_30_fps(hls_1080p: Path) -> None:
    rates = {name: variant.stream_info.frame_rate for name, variant in read_master(hls_1080p).items()}
    assert rates == {name: float(FPS) for name in SIZES_1080P}


def test_1080p_every_segment_starts_with_a_keyframe_at_the_same_media_time(hls_1080p: Path) -> None:
    starts: dict[str, list[int]] = {}
    for name in SIZES_1080P:
        playlist = m3u8.loads((hls_1080p / name / "index.m3u8").read_text())
        assert playlist.is_endlist
        assert abs(sum(s.duration for s in playlist.segments) - SECONDS) <= 0.1
        starts[name] = []
        for segment in playlist.segments:
            seg = probe(hls_1080p / name / segment.uri)
            where = f"{name}/{segment.uri}"
            assert seg.codecs == {"h264", "aac"}, where  # every rendition carries the audio
            assert seg.size == SIZES_1080P[name], where
            assert seg.first_is_key, f"{where} does not start with a keyframe"
            assert seg.first_pts == seg.min_pts, f"{where}: a frame is shown before the opening keyframe"
            assert abs(seg.duration - segment.duration) <= 0.1, where
            starts[name].append(seg.first_pts)

    # Source keyframes every 1 s, segment target 2 s: cuts at 0 s and 2 s of media time in every rendition.
    offset = TS_OFFSET_MS * TS_CLOCK // 1000
    reference = starts["source"]
    assert len(reference) == SECONDS // int(SEGMENT_TARGET)
    assert abs(reference[0] - offset) < ONE_FRAME, reference  # media time 0 (ffmpeg's FLV starts video at 23 ms)
    for index, pts in enumerate(reference):
        assert abs(pts - reference[0] - index * int(SEGMENT_TARGET * TS_CLOCK)) < ONE_FRAME, (index, pts)
    for name, pts_list in starts.items():
        assert len(pts_list) == len(reference), f"{name} has {len(pts_list)} segments, source {len(reference)}"
        for index, (pts, ref) in enumerate(zip(pts_list, reference)):
            assert abs(pts - ref) < ONE_FRAME, f"{name}/{index}.ts starts at {pts}, source at {ref}"


def test_480p_source_gets_no_upscaled_rung(hls_480p: Path) -> None:
    variants = read_master(hls_480p)
    assert list(variants) == ["source", "360p"]
    assert variants["source"].stream_info.resolution == (854, 480)
    assert variants["360p"].stream_info.resolution == (640, 360)
    for name in ("1080p", "720p", "480p"):
        assert not (hls_480p / name).exists(), f"{name} produced for a 480p source"
    for name in variants:
        playlist = m3u8.loads((hls_480p / name / "index.m3u8").read_text())
        segments = [probe(hls_480p / name / s.uri) for s in playlist.segments]
        assert len(segments) == 2 and all(s.first_is_key and s.codecs == {"h264", "aac"} for s in segments)
