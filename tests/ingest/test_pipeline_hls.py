"""HlsPipeline end to end without RTMP: units from a real ffmpeg-made FLV -> worker -> HLS on disk.

Checks the output with the m3u8 package and ffprobe: playlists parse, every
segment has video + audio and starts with a keyframe at the same media time in
every rendition, durations match EXTINF, sliding window while live, VOD after
finish; worker SIGKILL -> restart with a discontinuity; publisher reconnects;
garbage input.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import m3u8
import pytest

try:  # tests/ingest may or may not be a package
    from tests.ingest.flvfile import make_flv, read_units
    from tests.ingest.hlsprobe import probe_segment
except ImportError:
    from flvfile import make_flv, read_units  # type: ignore[no-redef]
    from hlsprobe import probe_segment  # type: ignore[no-redef]

from ingest.hls.playlist import MediaPlaylist
from ingest.media import MediaKind, MediaUnit
from ingest.pipeline import HlsPipeline, PipelineOptions
from ingest.transcode.ladder import parse_ladder

LADDER = parse_ladder("source,180p,120p,720p")  # 720p is trimmed: the source is 240p


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> list[MediaUnit]:
    return read_units(make_flv(tmp_path_factory.mktemp("src") / "src.flv", seconds=6).read_bytes())


@pytest.fixture(scope="module")
def long_units(tmp_path_factory: pytest.TempPathFactory) -> list[MediaUnit]:
    return read_units(make_flv(tmp_path_factory.mktemp("src") / "long.flv", seconds=12).read_bytes())


async def feed(pipeline: HlsPipeline, units: list[MediaUnit], speed: float | None = None) -> None:
    """Feed units, paced at ``speed`` x real time (None: as fast as the loop goes)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index, unit in enumerate(units):
        if speed is not None and not unit.config:
            delay = start + unit.dts / 1000 / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        elif index % 50 == 0:
            await asyncio.sleep(0)
        pipeline.feed(unit)


async def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def check_vod(root: Path, renditions: list[str], source_seconds: float) -> dict[str, m3u8.M3U8]:
    master = m3u8.loads((root / "master.m3u8").read_text())
    assert master.is_variant
    assert [p.uri for p in master.playlists] == [f"{name}/index.m3u8" for name in renditions]
    media: dict[str, m3u8.M3U8] = {}
    starts: dict[str, list[float]] = {}
    for variant in master.playlists:
        info = variant.stream_info
        assert info.bandwidth > 0 and info.average_bandwidth > 0 and info.frame_rate == 25.0
        name = variant.uri.split("/")[0]
        playlist = m3u8.loads((root / variant.uri).read_text())
        assert playlist.is_endlist and playlist.playlist_type == "vod"
        media[name] = playlist
        starts[name] = []
        for segment in playlist.segments:
            probe = probe_segment(root / name / segment.uri)
            assert probe.codecs == {"h264", "aac"}
            assert probe.first_video_keyframe, f"{name}/{segment.uri} does not start with a keyframe"
            assert abs(probe.duration - segment.duration) <= 0.1, (name, segment.uri, probe.duration, segment.duration)
            assert probe.video_size[1] == (240 if name == "source" else int(name[:-1]))
            starts[name].append(probe.first_video_pts)
        assert abs(sum(s.duration for s in playlist.segments) - source_seconds) <= 0.1
        codecs = info.codecs.split(",")
        assert codecs[0].startswith("avc1.") and codecs[1] == "mp4a.40.2"
    first = starts[renditions[0]]
    for name in renditions:
        assert starts[name] == first, "renditions are not cut at the same media time"
    return media


async def test_pipeline_live_then_vod(tmp_path: Path, units: list[MediaUnit]) -> None:
    root = tmp_path / "hls" / "b1"
    pipeline = HlsPipeline("b1", root, PipelineOptions(LADDER, segment_target=2.0, live_window=2))
    seen: list[tuple[str, int, float]] = []
    pipeline.on_segment = lambda name, seq, duration: seen.append((name, seq, duration))
    await pipeline.start()
    assert pipeline.stats.worker_pid is None  # nothing spawned before a keyframe
    try:
        await feed(pipeline, units, speed=4.0)
        await wait_for(lambda: pipeline.stats.segments_written >= 6)  # two segments of each rendition
        assert pipeline.stats.live and pipeline.stats.worker_pid is not None
        live = m3u8.loads((root / "180p" / "index.m3u8").read_text())
        assert not live.is_endlist and live.playlist_type is None
        assert len(live.segments) == 2  # sliding window
        await pipeline.finish()
    finally:
        await pipeline.close()
    stats = pipeline.stats
    assert not stats.live and stats.worker_pid is None
    assert stats.restarts == 0 and stats.dropped_units == 0 and stats.segments_written == 9
    assert stats.realtime_factor is not None and stats.realtime_factor > 0
    media = check_vod(root, ["source", "180p", "120p"], 6.0)
    assert [s.uri for s in media["120p"].segments] == ["0.ts", "1.ts", "2.ts"]
    assert sorted(seen) == sorted((n, i, 2.0) for n in ("source", "180p", "120p") for i in range(3))
    assert not (root / "720p").exists()
    assert not list(root.rglob("*.tmp"))


async def test_passthrough_only_ladder(tmp_path: Path, units: list[MediaUnit]) -> None:
    pipeline = HlsPipeline("b2", tmp_path, PipelineOptions(parse_ladder("source"), segment_target=1.0))
    await pipeline.start()
    try:
        await feed(pipeline, units)
        await pipeline.finish()
    finally:
        await pipeline.close()
    media = check_vod(tmp_path, ["source"], 6.0)
    assert len(media["source"].segments) == 6


async def test_worker_sigkill_restarts_with_discontinuity(tmp_path: Path, long_units: list[MediaUnit]) -> None:
    pipeline = HlsPipeline("b3", tmp_path, PipelineOptions(parse_ladder("source,120p"), segment_target=2.0))
    await pipeline.start()
    try:
        feeding = asyncio.create_task(feed(pipeline, long_units, speed=2.0))
        await wait_for(lambda: pipeline.stats.segments_written >= 2)
        first_pid = pipeline.stats.worker_pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        await wait_for(lambda: pipeline.stats.restarts == 1 and pipeline.stats.worker_pid not in (None, first_pid))
        await feeding
        await pipeline.finish()
    finally:
        await pipeline.close()
    assert pipeline.stats.restarts == 1
    for name in ("source", "120p"):
        text = (tmp_path / name / "index.m3u8").read_text()
        playlist = m3u8.loads(text)
        assert playlist.is_endlist
        flags = [s.discontinuity for s in playlist.segments]
        assert flags.count(True) == 1 and not flags[0]
        index = flags.index(True)
        assert index >= 1 and len(flags) > index + 1  # more segments followed the restart
        assert [s.uri for s in playlist.segments] == [f"{i}.ts" for i in range(len(flags))]  # numbering continues
        assert not list((tmp_path / name).glob("*.tmp"))
        for segment in playlist.segments:
            probe = probe_segment(tmp_path / name / segment.uri)
            assert probe.first_video_keyframe and probe.codecs == {"h264", "aac"}
            assert abs(probe.duration - segment.duration) <= 0.1


async def test_stopped_worker_is_killed_and_restarted(tmp_path: Path, long_units: list[MediaUnit]) -> None:
    options = PipelineOptions(parse_ladder("source"), segment_target=1.0, stall_timeout=1.5)
    pipeline = HlsPipeline("b8", tmp_path, options)
    await pipeline.start()
    try:
        feeding = asyncio.create_task(feed(pipeline, long_units, speed=2.0))
        await wait_for(lambda: pipeline.stats.segments_written >= 1)
        first_pid = pipeline.stats.worker_pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGSTOP)  # hung, not dead
        await wait_for(lambda: pipeline.stats.restarts == 1)
        await feeding
        await pipeline.finish()
    finally:
        await pipeline.close()
    assert pipeline.last_error is None or "stalled" not in pipeline.last_error  # the new worker ran cleanly
    playlist = m3u8.loads((tmp_path / "source" / "index.m3u8").read_text())
    assert [s.discontinuity for s in playlist.segments].count(True) == 1
    assert playlist.is_endlist


async def test_a_publisher_pause_is_not_a_stalled_worker(tmp_path: Path, units: list[MediaUnit]) -> None:
    # The worker holds the end of its last part while the publisher is away (a reconnect grace): it is
    # waiting for input, not hung, and must not be killed and counted as a crash.
    options = PipelineOptions(parse_ladder("source"), segment_target=1.0, stall_timeout=1.0, low_latency=True)
    pipeline = HlsPipeline("b9", tmp_path, options)
    await pipeline.start()
    # stop two frames after a keyframe: the keyframe opened a part, the last unit written completes none,
    # so the worker reports nothing after the last write
    keys = [i for i, u in enumerate(units) if u.kind is MediaKind.VIDEO and u.keyframe and not u.config]
    frames_after = [i for i, u in enumerate(units) if u.kind is MediaKind.VIDEO and i > keys[2]]
    half = frames_after[1] + 1
    try:
        await feed(pipeline, units[:half], speed=1.0)
        await asyncio.sleep(3.0)  # three stall timeouts without input
        assert pipeline.stats.worker_failures == 0 and pipeline.stats.restarts == 0
        await feed(pipeline, units[half:])
        await pipeline.finish()
    finally:
        await pipeline.close()
    assert pipeline.stats.worker_failures == 0 and pipeline.stats.restarts == 0


async def test_late_audio_starts_a_worker_generation_that_has_it(tmp_path: Path, units: list[MediaUnit],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    # The publisher's audio starts 3 s after its video (no audio configuration before the worker started):
    # the next worker generation carries it, instead of the broadcast staying silent.
    caplog.set_level(logging.INFO, logger="ingest.pipeline")
    late = 3000
    video_first = [u for u in units if u.kind is MediaKind.VIDEO or (not u.config and u.dts >= late)]
    video_first.sort(key=lambda u: (u.dts if not u.config else -1))
    audio_config = next(u for u in units if u.kind is MediaKind.AUDIO and u.config)
    at = next(i for i, u in enumerate(video_first) if u.kind is MediaKind.AUDIO)
    video_first.insert(at, audio_config)
    options = PipelineOptions(parse_ladder("source"), segment_target=1.0, low_latency=True)
    pipeline = HlsPipeline("b10", tmp_path, options)
    await pipeline.start()
    try:
        await feed(pipeline, video_first, speed=4.0)
        await pipeline.finish()
    finally:
        await pipeline.close()
    assert pipeline.stats.worker_failures == 0
    assert any("late audio configuration, starting a new worker generation" in r.getMessage() for r in caplog.records)
    master = m3u8.loads((tmp_path / "master.m3u8").read_text())
    assert [m.type for m in master.media] == ["AUDIO"]
    audio = m3u8.loads((tmp_path / "audio" / "index.m3u8").read_text())
    assert abs(sum(s.duration for s in audio.segments) - 3.0) <= 0.3
    video = m3u8.loads((tmp_path / "source" / "index.m3u8").read_text())
    assert abs(sum(s.duration for s in video.segments) - 6.0) <= 0.3
    assert [s.discontinuity for s in video.segments].count(True) == 1


async def test_mark_discontinuity_on_publisher_reconnect(tmp_path: Path, units: list[MediaUnit]) -> None:
    pipeline = HlsPipeline("b4", tmp_path, PipelineOptions(parse_ladder("source,120p"), segment_target=2.0))
    await pipeline.start()
    try:
        await feed(pipeline, units)
        pipeline.mark_discontinuity()
        await feed(pipeline, units)  # the publisher again: timestamps restart at 0
        await pipeline.finish()
    finally:
        await pipeline.close()
    assert pipeline.stats.restarts == 0 and pipeline.stats.dropped_units == 0
    for name in ("source", "120p"):
        playlist = m3u8.loads((tmp_path / name / "index.m3u8").read_text())
        assert [s.discontinuity for s in playlist.segments] == [False, False, False, True, False, False]
        assert [s.uri for s in playlist.segments] == [f"{i}.ts" for i in range(6)]
        assert abs(sum(s.duration for s in playlist.segments) - 12.0) <= 0.1
        assert playlist.is_endlist


async def test_restart_of_node_continues_numbering(tmp_path: Path, units: list[MediaUnit]) -> None:
    options = PipelineOptions(parse_ladder("source"), segment_target=2.0)
    for _ in range(2):
        pipeline = HlsPipeline("b5", tmp_path, options)
        await pipeline.start()
        try:
            await feed(pipeline, units)
            await pipeline.finish()
        finally:
            await pipeline.close()
    playlist = MediaPlaylist.parse((tmp_path / "source" / "index.m3u8").read_text())
    assert [s.uri for s in playlist.segments] == [f"{i}.ts" for i in range(6)]
    assert [s.discontinuity for s in playlist.segments] == [False] * 3 + [True, False, False]


async def test_a_node_that_died_mid_broadcast_leaves_a_replay_of_every_segment(tmp_path: Path,
                                                                              long_units: list[MediaUnit]) -> None:
    # live window of 2: while live, index.m3u8 lists only the last 2 segments
    options = PipelineOptions(parse_ladder("source"), segment_target=2.0, live_window=2)
    dead = HlsPipeline("b9", tmp_path, options)
    await dead.start()
    await feed(dead, long_units)
    await wait_for(lambda: dead.stats.segments_written >= 5)
    await dead.close()  # the node died: no flush, no ENDLIST
    live = m3u8.loads((tmp_path / "source" / "index.m3u8").read_text())
    assert not live.is_endlist and live.media_sequence >= 3 and len(live.segments) == 2

    # the restarted node resumes; the grace runs out without a publisher: the replay is every segment
    resumed = HlsPipeline("b9", tmp_path, options)
    await resumed.start()
    await resumed.finish()
    replay = m3u8.loads((tmp_path / "source" / "index.m3u8").read_text())
    assert replay.is_endlist and replay.media_sequence in (None, 0)
    written = len(replay.segments)
    assert [s.uri for s in replay.segments] == [f"{i}.ts" for i in range(written)] and written >= 5

    # or the publisher came back: the new media follows after a discontinuity, numbering continues
    again = HlsPipeline("b9", tmp_path, options)
    await again.start()
    try:
        await feed(again, long_units[:len(long_units) // 2])
        await again.finish()
    finally:
        await again.close()
    replay = m3u8.loads((tmp_path / "source" / "index.m3u8").read_text())
    assert [s.uri for s in replay.segments][:written + 1] == [f"{i}.ts" for i in range(written + 1)]
    assert [i for i, s in enumerate(replay.segments) if s.discontinuity] == [written]
    for segment in replay.segments:
        assert (tmp_path / "source" / segment.uri).stat().st_size > 0


async def test_garbage_video_is_logged_and_retried_without_end(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    # Well-framed AVCC whose configuration and pictures are junk: every worker fails. Past max_restarts
    # the pipeline slows down to one try every failing_retry seconds, and never stops trying while the
    # publisher sends (a broadcast must not silently stop producing HLS).
    caplog.set_level(logging.INFO, logger="ingest.pipeline")
    options = PipelineOptions(parse_ladder("source,120p"), max_restarts=2, failing_retry=0.3)
    pipeline = HlsPipeline("b6", tmp_path, options)
    await pipeline.start()
    junk = bytes(range(256)) * 8
    frame = len(junk).to_bytes(4, "big") + junk[:1].replace(b"\x00", b"\x65") + junk[1:]
    try:
        pipeline.feed(MediaUnit(MediaKind.VIDEO, "h264", 0, 0, True, True, junk[:40]))
        for t in range(400):
            pipeline.feed(MediaUnit(MediaKind.VIDEO, "h264", t * 40, 0, True, False, frame))
            await asyncio.sleep(0.01)
            if pipeline.stats.restarts >= 4:
                break
        await wait_for(lambda: pipeline.stats.restarts >= 4)
        await pipeline.finish()
    finally:
        await pipeline.close()
    stats = pipeline.stats
    assert not stats.live and stats.worker_failures >= 4
    messages = [r.getMessage() for r in caplog.records]
    assert "broadcast b6: transcode worker error: input video has no decodable size (bad H.264 configuration?)" in messages
    assert sum("crashed 2 times in 60 s; retrying every 0.3 s while the publisher sends" in m for m in messages) == 1
    assert not (tmp_path / "master.m3u8").exists()


async def test_unframed_video_is_dropped_by_the_repair_stage(tmp_path: Path) -> None:
    # NAL lengths that do not fit the unit: the repair stage drops it (and what follows, up to an IDR),
    # so no worker is ever started on it
    pipeline = HlsPipeline("b8", tmp_path, PipelineOptions(parse_ladder("source")))
    await pipeline.start()
    junk = bytes(range(256)) * 8
    try:
        pipeline.feed(MediaUnit(MediaKind.VIDEO, "h264", 0, 0, True, True, junk[:40]))
        for t in range(20):
            pipeline.feed(MediaUnit(MediaKind.VIDEO, "h264", t * 40, 0, True, False, junk))
        await asyncio.sleep(0.2)
        assert pipeline.stats.worker_pid is None and pipeline.stats.worker_failures == 0
        assert pipeline.health.repairs == {"unreadable_unit": 20}
        await pipeline.finish()
    finally:
        await pipeline.close()


async def test_backlog_bound_drops_until_keyframe(tmp_path: Path, units: list[MediaUnit]) -> None:
    # A bound smaller than one GOP: the pipeline drops (counted) instead of growing; nothing is spawned
    # before start(), so every unit lands in the queue.
    pipeline = HlsPipeline("b7", tmp_path, PipelineOptions(parse_ladder("source"), max_pending_bytes=20_000))
    await feed(pipeline, units)
    assert pipeline.stats.dropped_units > 0
    assert pipeline.pending_bytes <= 20_000
    await pipeline.close()
    await pipeline.close()  # idempotent
