"""Issue 6: the default ladder packaged as LL-HLS (CMAF parts), read back with m3u8 and ffprobe.

Same 1080p30 source as ``test_ladder_alignment`` (keyframe every second, 2 s
segment target), through ``HlsPipeline`` with ``low_latency=True``: four video
renditions and one audio rendition; every segment of every video rendition
starts with a keyframe at the same media time; each segment is exactly its
parts concatenated; parts never exceed the part target and the first part of
every segment is independent.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import m3u8
import pytest

try:  # tests/ingest may or may not be a package
    from tests.ingest.hlsprobe import ffprobe_path
    from tests.ingest.test_ladder_alignment import SECONDS, SIZES_1080P, source_units
except ImportError:
    from hlsprobe import ffprobe_path  # type: ignore[no-redef]
    from test_ladder_alignment import SECONDS, SIZES_1080P, source_units  # type: ignore[no-redef]

from ingest.hls.playlist import MediaPlaylist
from ingest.hls.watch import PlaylistWatch
from ingest.pipeline import HlsPipeline, PipelineOptions
from ingest.transcode.ladder import default_ladder

PART_TARGET = 0.5
SEGMENT_TARGET = 2.0
ONE_FRAME = 1 / 30


def probe_packets(init: Path, segment: Path, tmp: Path) -> tuple[set[str], list[dict[str, str]]]:
    joined = tmp / f"{segment.parent.name}-{segment.name}.mp4"
    joined.write_bytes(init.read_bytes() + segment.read_bytes())
    out = subprocess.run([ffprobe_path(), "-v", "error", "-show_entries",
                          "packet=pts_time,dts_time,flags:stream=codec_type,width,height", "-of", "json", str(joined)],
                         check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    return {s["codec_type"] for s in info["streams"]}, info["packets"]


@pytest.fixture(scope="module")
def ll_1080p(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("llhls")
    units = source_units(tmp_path_factory, "1920x1080")
    live_playlists: dict[str, list[str]] = {}

    async def run() -> None:
        options = PipelineOptions(default_ladder(), segment_target=SEGMENT_TARGET, max_pending_bytes=64 << 20,
                                  low_latency=True, part_target=PART_TARGET)
        watch = PlaylistWatch()
        pipeline = HlsPipeline("llalign", root, options, watch=watch)
        await pipeline.start()
        try:
            for unit in units:
                pipeline.feed(unit)
            # the live playlists as the origin sees them, once each has a complete segment
            # (the worker keeps the last segment open until finish() closes its input)
            for name in (*SIZES_1080P, "audio"):
                while (position := watch.position("llalign", name)) is None or position.last_msn < 0:
                    assert await watch.changed("llalign", name, 60), f"{name}: no segment within 60 s"
                live_playlists[name] = [(root / name / "index.m3u8").read_text()]
            await pipeline.finish()
        finally:
            await pipeline.close()
        assert pipeline.last_error is None, pipeline.last_error
        assert pipeline.stats.dropped_units == 0 and pipeline.stats.restarts == 0

    asyncio.run(run())
    return root, live_playlists


def test_master_has_four_video_variants_sharing_one_audio_rendition(ll_1080p) -> None:
    root, _ = ll_1080p
    master = m3u8.loads((root / "master.m3u8").read_text())
    audio = [media for media in master.media if media.type == "AUDIO"]
    assert len(audio) == 1 and audio[0].uri == "audio/index.m3u8" and audio[0].default == "YES"
    variants = {v.uri.split("/")[0]: v.stream_info for v in master.playlists}
    assert list(variants) == list(SIZES_1080P)
    for name, info in variants.items():
        assert info.resolution == SIZES_1080P[name]
        assert info.audio == audio[0].group_id
        assert info.codecs.split(",")[1] == "mp4a.40.2"
        assert info.bandwidth > 0 and info.frame_rate == 30.0


def test_every_segment_starts_with_a_keyframe_at_the_same_media_time(ll_1080p, tmp_path: Path) -> None:
    root, _ = ll_1080p
    starts: dict[str, list[float]] = {}
    for name, size in SIZES_1080P.items():
        playlist = m3u8.loads((root / name / "index.m3u8").read_text())
        assert playlist.is_endlist and playlist.segments
        assert abs(sum(s.duration for s in playlist.segments) - SECONDS) <= 0.1
        starts[name] = []
        for segment in playlist.segments:
            init = root / name / segment.init_section.uri
            kinds, packets = probe_packets(init, root / name / segment.uri, tmp_path)
            where = f"{name}/{segment.uri}"
            assert kinds == {"video"}, where  # the audio lives in its own rendition
            assert packets[0]["flags"].startswith("K"), f"{where} does not start with a keyframe"
            first = float(packets[0]["pts_time"])
            assert first == min(float(p["pts_time"]) for p in packets), f"{where}: a frame shown before the keyframe"
            starts[name].append(first)
    reference = starts["source"]
    assert len(reference) == SECONDS // int(SEGMENT_TARGET)
    for name, times in starts.items():
        assert len(times) == len(reference), name
        for index, (start, ref) in enumerate(zip(times, reference)):
            assert abs(start - ref) < ONE_FRAME / 2, f"{name} segment {index} starts at {start}, source at {ref}"


def test_audio_rendition_is_audio_only_and_covers_the_broadcast(ll_1080p, tmp_path: Path) -> None:
    root, _ = ll_1080p
    playlist = m3u8.loads((root / "audio" / "index.m3u8").read_text())
    assert playlist.is_endlist
    assert abs(sum(s.duration for s in playlist.segments) - SECONDS) <= 0.2
    video = m3u8.loads((root / "source" / "index.m3u8").read_text())
    # audio segments follow the video cuts to the nearest audio part boundary: same numbering, near-equal
    # spans (the audio may run a fraction of a part past the last video frame: a short tail segment at the end)
    assert len(video.segments) <= len(playlist.segments) <= len(video.segments) + 1
    for audio_segment, video_segment in zip(playlist.segments[:-1], video.segments[:-1]):
        assert abs(audio_segment.duration - video_segment.duration) <= PART_TARGET / 2 + 0.05
    if len(playlist.segments) > len(video.segments):
        assert playlist.segments[-1].duration < PART_TARGET
    for segment in playlist.segments:
        kinds, packets = probe_packets(root / "audio" / segment.init_section.uri, root / "audio" / segment.uri, tmp_path)
        assert kinds == {"audio"} and packets


def test_segments_are_their_parts_and_parts_respect_the_target(ll_1080p) -> None:
    root, live = ll_1080p
    for name in (*SIZES_1080P, "audio"):
        text = live[name][0]
        playlist = MediaPlaylist.parse(text)  # a plain reader keeps the segments
        assert playlist.segments
        assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500" in text
        assert f"#EXT-X-PART-INF:PART-TARGET={PART_TARGET:.3f}" in text
        assert "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=" in text
        parsed = m3u8.loads(text)
        assert parsed.server_control.can_block_reload == "YES"
        complete = [segment for segment in parsed.segments if segment.uri]
        for segment in complete:
            if not segment.parts:
                continue  # parts are listed for the last few segments only
            assert segment.parts[0].independent == "YES", f"{name}/{segment.uri}: first part not independent"
            assert all(part.duration <= PART_TARGET for part in segment.parts), (name, segment.uri)
            joined = b"".join((root / name / part.uri).read_bytes() for part in segment.parts)
            assert joined == (root / name / segment.uri).read_bytes(), f"{name}/{segment.uri} != its parts"
            assert abs(sum(part.duration for part in segment.parts) - segment.duration) < 0.01
        if name != "audio":
            reports = {report.uri for report in parsed.rendition_reports}
            assert reports == {f"../{other}/index.m3u8" for other in SIZES_1080P if other != name}
