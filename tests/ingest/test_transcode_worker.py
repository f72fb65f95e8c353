"""The worker process on its own: FLV on stdin -> segments + JSON events on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

try:  # tests/ingest may or may not be a package
    from tests.ingest.flvfile import make_flv, read_units
    from tests.ingest.hlsprobe import probe_segment
except ImportError:
    from flvfile import make_flv, read_units  # type: ignore[no-redef]
    from hlsprobe import probe_segment  # type: ignore[no-redef]

from ingest import flv
from ingest.media import MediaKind


@pytest.fixture(scope="module")
def pipe_flv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What the pipeline writes to a worker: header + units re-encoded by ingest.flv."""
    source = make_flv(tmp_path_factory.mktemp("src") / "src.flv", seconds=5)
    units = read_units(source.read_bytes())
    return flv.file_header() + b"".join(flv.encode_unit(u) for u in units)


def run_worker(config: dict | str, stdin: bytes) -> tuple[int, list[dict], str]:
    arg = config if isinstance(config, str) else json.dumps(config)
    proc = subprocess.run([sys.executable, "-m", "ingest.transcode.worker", arg], input=stdin,
                          capture_output=True, timeout=60)
    events = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    return proc.returncode, events, proc.stderr.decode()


RENDITIONS = [
    {"name": "source", "passthrough": True, "height": None, "video_bitrate": None},
    {"name": "180p", "passthrough": False, "height": 180, "video_bitrate": 300_000},
    {"name": "720p", "passthrough": False, "height": 720, "video_bitrate": 2_800_000},  # trimmed: above the source
]


def test_worker_segments_all_renditions_aligned(tmp_path: Path, pipe_flv: bytes) -> None:
    rc, events, stderr = run_worker({"out_dir": str(tmp_path), "renditions": RENDITIONS, "segment_target": 2.0,
                                     "start_seq": {"180p": 7}}, pipe_flv)
    assert rc == 0, stderr
    assert events[0]["event"] == "started"
    assert events[0]["renditions"] == [
        {"name": "source", "width": 320, "height": 240, "bandwidth": None, "codecs": "avc1.42c00d,mp4a.40.2", "frame_rate": 25.0},
        {"name": "180p", "width": 240, "height": 180, "bandwidth": int(300_000 * 1.2) + 128_000,
         "codecs": "avc1.64000c,mp4a.40.2", "frame_rate": 25.0},
    ]
    segments = [e for e in events if e["event"] == "segment"]
    by = {name: [e for e in segments if e["rendition"] == name] for name in ("source", "180p")}
    assert [e["seq"] for e in by["source"]] == [0, 1, 2]
    assert not any(e["event"] == "error" for e in events)
    assert [e["seq"] for e in by["180p"]] == [7, 8, 9]  # numbering continues from start_seq
    assert [e["duration"] for e in by["source"]] == [2.0, 2.0, 1.0]
    assert [e["first_pts"] for e in by["source"]] == [e["first_pts"] for e in by["180p"]]
    assert any(e["event"] == "stats" and e["media_seconds"] == 5.0 for e in events)
    for name, items in by.items():
        for event in items:
            path = tmp_path / name / f"{event['seq']}.ts"
            assert path.stat().st_size == event["bytes"]
            probe = probe_segment(path)
            assert probe.codecs == {"h264", "aac"}
            assert probe.first_video_keyframe
            assert abs(probe.first_video_pts - 1.4 - event["first_pts"] / 1000) < 0.001  # TS_OFFSET_MS
            assert abs(probe.duration - event["duration"]) < 0.1
            assert probe.video_size == ((320, 240) if name == "source" else (240, 180))
            # the CODECS reported up front match the SPS actually written
            assert probe.video_profile == (("Constrained Baseline", 13) if name == "source" else ("High", 12))
    assert not list(tmp_path.rglob("*.tmp"))
    assert not (tmp_path / "720p").exists()


def test_worker_passthrough_only(tmp_path: Path, pipe_flv: bytes) -> None:
    rc, events, stderr = run_worker({"out_dir": str(tmp_path), "renditions": RENDITIONS[:1], "segment_target": 1.0}, pipe_flv)
    assert rc == 0, stderr
    segments = [e for e in events if e["event"] == "segment"]
    assert [e["duration"] for e in segments] == [1.0] * 5


def test_worker_video_only_source(tmp_path: Path) -> None:
    source = make_flv(tmp_path / "v.flv", seconds=3, audio=False)
    stream = flv.file_header(has_audio=False) + b"".join(flv.encode_unit(u) for u in read_units(source.read_bytes()))
    rc, events, stderr = run_worker({"out_dir": str(tmp_path / "out"), "renditions": RENDITIONS}, stream)
    assert rc == 0, stderr
    assert [r["codecs"] for r in events[0]["renditions"]] == ["avc1.42c00d", "avc1.64000c"]
    segments = [e for e in events if e["event"] == "segment"]
    assert sorted((e["rendition"], e["seq"], e["duration"]) for e in segments) == [
        ("180p", 0, 2.0), ("180p", 1, 1.0), ("source", 0, 2.0), ("source", 1, 1.0)]
    probe = probe_segment(tmp_path / "out" / "180p" / "1.ts")
    assert probe.codecs == {"h264"} and probe.first_video_keyframe


def test_a_packet_the_muxer_refuses_costs_that_packet_not_the_worker(tmp_path: Path) -> None:
    # What the repair stage prevents, fed straight to a worker: an audio frame 400 ms before the one before
    # it. The audio track's mp4 muxer refuses it; the worker drops that packet, reports it, and writes
    # every segment of every track.
    units = read_units(make_flv(tmp_path / "src.flv", seconds=4).read_bytes())
    sounds = [u for u in units if u.kind is MediaKind.AUDIO and not u.config]
    victim = sounds[60]
    units = [replace(u, dts=u.dts - 400) if u is victim else u for u in units]
    stdin = flv.file_header() + b"".join(flv.encode_unit(u) for u in units)
    rc, events, stderr = run_worker({"out_dir": str(tmp_path / "out"), "renditions": RENDITIONS[:2],
                                     "segment_target": 1.0, "low_latency": True}, stdin)
    assert rc == 0, stderr
    dropped = [e for e in events if e["event"] == "packet_dropped"]
    assert [(e["rendition"], e["stage"]) for e in dropped] == [("audio", "mux")]
    assert "non monotonically increasing dts" in dropped[0]["message"]
    assert not any(e["event"] == "error" for e in events)
    for name in ("source", "180p", "audio"):
        seconds = sum(e["duration"] for e in events if e["event"] == "segment" and e["rendition"] == name)
        assert abs(seconds - 4.0) < 0.1, (name, seconds)


def test_worker_garbage_input_reports_error(tmp_path: Path) -> None:
    rc, events, _ = run_worker({"out_dir": str(tmp_path), "renditions": RENDITIONS}, b"\x00garbage" * 1000)
    assert rc == 1
    assert events[-1]["event"] == "error"
    assert events[-1]["message"].startswith("cannot read the FLV input")


def test_worker_bad_h264_config_reports_error(tmp_path: Path) -> None:
    from ingest.media import MediaKind, MediaUnit

    junk = bytes(range(256)) * 4
    units = [MediaUnit(MediaKind.VIDEO, "h264", 0, 0, True, True, junk[:40])]
    units += [MediaUnit(MediaKind.VIDEO, "h264", t * 40, 0, True, False, junk) for t in range(100)]
    stream = flv.file_header(has_audio=False) + b"".join(flv.encode_unit(u) for u in units)
    rc, events, _ = run_worker({"out_dir": str(tmp_path), "renditions": RENDITIONS}, stream)
    assert rc == 1
    assert events[-1] == {"event": "error", "message": "input video has no decodable size (bad H.264 configuration?)"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{", "worker config is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("[]", "worker config must be a JSON object"),
        ('{"out_dir": "/tmp", "renditions": []}', "worker config has no renditions"),
        ('{"out_dir": "/tmp"}', "bad worker config: KeyError('renditions')"),
    ],
)
def test_worker_bad_config(config: str, message: str) -> None:
    rc, events, _ = run_worker(config, b"")
    assert rc == 2
    assert events == [{"event": "error", "message": message}]
