"""The worker's typed events: what the worker writes is what the node reads, and a malformed
line is a ValueError (the node logs and drops it), never a KeyError deep in the packager."""

from __future__ import annotations

import io
import json

import pytest

from ingest.transcode.events import (Events, Init, PacketDropped, Part, Segment, Started, StartedAudio,
                                     StartedRendition, Stats, WorkerError, parse)

EVENTS = [
    Started((StartedRendition("source", 1280, 720, "avc1.64001f,mp4a.40.2", 2_500_000, 30.0),
             StartedRendition("360p", 640, 360, "avc1.4d401e", None, None)), StartedAudio("mp4a.40.2", 128_000, 2)),
    Started((StartedRendition("source", 320, 240, "avc1.42c00d"),)),
    Init("audio", "init0.mp4"),
    Part("360p", 4, 2, 0.5, True, 12_345, "s4.p2.m4s", 4_966),
    Segment("source", 7, 2.0, 400_000, "s7.m4s", 14_000, 4),
    Segment("source", 7, 2.002, 400_000, first_pts=None),
    Stats(10.0, 4.0, 2.5, 75.0),
    Stats(0.0, 0.0),
    PacketDropped("decoder", "decode", "Invalid data found when processing input"),
    WorkerError("cannot read the FLV input"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_an_event_reads_back_as_written(event: object) -> None:
    out = io.StringIO()
    Events(out).report(event)  # type: ignore[arg-type]
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert parse(line.encode()) == event


def test_the_wire_format_keeps_its_keys() -> None:
    """The JSON the node has always read (a worker of the previous release is read the same)."""
    part = json.loads(json.dumps(Part("source", 1, 0, 0.5, False, 10, "s1.p0.m4s", 500).to_json()))
    assert part == {"event": "part", "rendition": "source", "seq": 1, "index": 0, "duration": 0.5,
                    "independent": False, "bytes": 10, "uri": "s1.p0.m4s", "last_pts": 500}
    assert parse(b'{"event":"segment","rendition":"360p","seq":3,"duration":2.0,"bytes":9,"first_pts":0}') == \
        Segment("360p", 3, 2.0, 9, None, 0, None)


@pytest.mark.parametrize("line", [
    b"", b"not json", b"[]", b'"segment"', b"{}", b'{"event":"nope"}',
    b'{"event":"segment","rendition":"a","seq":"1","duration":2,"bytes":1}',
    b'{"event":"segment","rendition":"a","seq":1,"duration":2}',
    b'{"event":"segment","rendition":"a","seq":1,"duration":2,"bytes":1,"uri":5}',
    b'{"event":"part","rendition":"a","seq":1,"index":0,"duration":0.5,"bytes":1,"uri":"x"}',
    b'{"event":"init","rendition":"a"}',
    b'{"event":"started","renditions":{}}',
    b'{"event":"started","renditions":[{"name":"a"}]}',
    b'{"event":"started","renditions":[],"audio":3}',
    b'{"event":"packet_dropped","rendition":"a","stage":"eat","message":"x"}',
    b'{"event":"stats","media_seconds":"fast"}',
    b'{"event":"segment","rendition":"a","seq":true,"duration":2,"bytes":1}',
])
def test_a_malformed_line_is_a_value_error(line: bytes) -> None:
    with pytest.raises(ValueError):
        parse(line)


def test_an_error_message_is_bounded() -> None:
    assert parse(json.dumps({"event": "error", "message": "x" * 5000})) == WorkerError("x" * 500)
