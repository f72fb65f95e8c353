"""The recording's MP4 and poster from a real replay (HlsPipeline with its transcode worker, fed a
real ffmpeg-made FLV twice with a publisher reconnect between), for both HLS variants: H.264 + AAC,
as long as the replay, the second publish after the first; a damaged replay is skipped or refused
with a clear error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import m3u8
import pytest

from broadcaster.recordings.remux import RemuxError, poster, remux, top_rendition
from ingest.media import MediaUnit
from ingest.pipeline import HlsPipeline, PipelineOptions
from ingest.transcode.ladder import parse_ladder
from tests.conftest import require_tool
from tests.ingest.flvfile import make_flv, read_units
from tests.ingest.test_pipeline_hls import feed


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> list[MediaUnit]:
    return read_units(make_flv(tmp_path_factory.mktemp("src") / "src.flv", seconds=4).read_bytes())


def _probe(path: Path) -> dict:
    return json.loads(subprocess.run([require_tool("ffprobe"), "-v", "error", "-count_packets", "-show_streams", "-show_format",
                                      "-of", "json", str(path)], capture_output=True, check=True).stdout)


@pytest.mark.parametrize("low_latency", [True, False], ids=["lowlatency", "mpegts"])
async def test_a_replay_with_a_reconnect_becomes_one_mp4(tmp_path: Path, units: list[MediaUnit],
                                                         low_latency: bool) -> None:
    root = tmp_path / "hls" / "b1"
    pipeline = HlsPipeline("b1", root, PipelineOptions(parse_ladder("source,120p"), segment_target=1.0,
                                                       low_latency=low_latency))
    await pipeline.start()
    try:
        await feed(pipeline, units)
        pipeline.mark_discontinuity()
        await feed(pipeline, units)  # the publisher again: timestamps restart at 0
        await pipeline.finish()
    finally:
        await pipeline.close()
    assert top_rendition(root) == "source"  # 320x240 beats 160x120
    replay = m3u8.loads((root / "source" / "index.m3u8").read_text())
    assert replay.is_endlist and sum(s.discontinuity for s in replay.segments) == 1
    hls_duration = sum(s.duration for s in replay.segments)

    made = remux(root, tmp_path / "out.mp4")
    assert (made.rendition, made.video_codec, made.audio_codec) == ("source", "h264", "aac")
    assert made.duration == pytest.approx(hls_duration) and made.size == (tmp_path / "out.mp4").stat().st_size
    probe = _probe(tmp_path / "out.mp4")
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
    assert (streams["video"]["width"], streams["video"]["height"]) == (320, 240)
    assert abs(float(probe["format"]["duration"]) - hls_duration) <= 0.5
    assert int(streams["video"]["nb_read_packets"]) >= 2 * 4 * 25 * 0.95  # both publishes, every frame
    assert not list(tmp_path.glob(".*.tmp"))

    size = poster(tmp_path / "out.mp4", tmp_path / "poster.jpg", at=1.0)
    jpeg = (tmp_path / "poster.jpg").read_bytes()
    assert len(jpeg) == size and jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    assert _probe(tmp_path / "poster.jpg")["streams"][0]["width"] == 320

    # a segment gone from disk is skipped (logged); the rest is still made
    (root / "source" / replay.segments[1].uri).unlink()
    assert remux(root, tmp_path / "holed.mp4").size < made.size


def test_a_replay_without_media_is_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(RemuxError, match="no master playlist"):
        remux(tmp_path, tmp_path / "x.mp4")
    (tmp_path / "master.m3u8").write_text("#EXTM3U\n")
    with pytest.raises(RemuxError, match="lists no rendition"):
        remux(tmp_path, tmp_path / "x.mp4")
    (tmp_path / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x2\nv/index.m3u8\n")
    with pytest.raises(RemuxError, match="rendition v of .* has no segment"):
        remux(tmp_path, tmp_path / "x.mp4")
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "segments.jsonl").write_text('{"seq":0,"duration":1.0,"uri":"0.ts"}\n')
    (tmp_path / "v" / "0.ts").write_bytes(b"\x47" + b"garbage" * 100)
    with pytest.raises(RemuxError, match="no readable video"):
        remux(tmp_path, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists() and not list(tmp_path.glob(".*.tmp"))
