"""Per-packet error isolation in the worker (PacketGuard), its typed event, and a broadcast's media tally."""

from __future__ import annotations

import logging
from collections import Counter

import av
import pytest

from ingest.health import MediaHealth
from ingest.repair import Repair, RepairKind
from ingest.transcode.events import PacketDropped
from ingest.transcode.guard import PacketGuard


def _refuse() -> None:
    raise av.error.ArgumentError(22, "Invalid argument")


def test_a_failed_video_packet_drops_up_to_the_next_keyframe() -> None:
    reported: list[PacketDropped] = []
    guard = PacketGuard("source", "mux", reported.append, to_keyframe=True, limit=5)
    done: list[int] = []
    assert guard.run(lambda: done.append(1)) is True
    assert guard.run(_refuse, keyframe=False) is False
    assert guard.run(lambda: done.append(2), keyframe=False) is False  # refers to the lost one: dropped
    assert guard.run(lambda: done.append(3), keyframe=True) is True
    assert done == [1, 3] and guard.dropped == 2
    assert reported == [PacketDropped("source", "mux", "Invalid argument returned 22")]


def test_a_failed_audio_packet_costs_only_itself() -> None:
    reported: list[PacketDropped] = []
    guard = PacketGuard("audio", "mux", reported.append, to_keyframe=False)
    done: list[int] = []
    guard.run(_refuse)
    guard.run(lambda: done.append(1), keyframe=False)
    assert done == [1] and len(reported) == 1


def test_only_a_run_of_failures_ends_the_worker() -> None:
    guard = PacketGuard("360p", "encode", lambda event: None, to_keyframe=False, limit=3)
    guard.run(_refuse)
    guard.run(_refuse)
    guard.run(lambda: None)  # a success resets the run
    guard.run(_refuse)
    guard.run(_refuse)
    with pytest.raises(RuntimeError, match=r"^360p: 3 packets in a row failed to encode \(last: Invalid argument"):
        guard.run(_refuse)


def test_other_errors_are_not_swallowed() -> None:
    guard = PacketGuard("source", "mux", lambda event: None, to_keyframe=True)
    with pytest.raises(OSError):
        guard.run(lambda: (_ for _ in ()).throw(OSError("disk full")))


def test_packet_dropped_event_round_trip_and_refusals() -> None:
    event = PacketDropped("240p", "encode", "x" * 600)
    data = event.to_json()
    assert data == {"event": "packet_dropped", "rendition": "240p", "stage": "encode", "message": "x" * 600}
    assert PacketDropped.from_json(data) == PacketDropped("240p", "encode", "x" * 500)
    for bad in ({**data, "stage": "fly"}, {**data, "rendition": 3}, {"event": "packet_dropped"}):
        with pytest.raises(ValueError, match="malformed packet_dropped event"):
            PacketDropped.from_json(bad)


class Counters:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def media_repaired(self, kind: str) -> None:
        self.seen[f"repair:{kind}"] += 1

    def packet_dropped(self, stage: str) -> None:
        self.seen[f"drop:{stage}"] += 1

    def worker_failed(self) -> None:
        self.seen["worker"] += 1


def test_health_counts_every_repair_and_logs_each_kind_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ingest.health")
    counters = Counters()
    health = MediaHealth("b1", counters)
    dup = Repair(RepairKind.DTS_NOT_INCREASING, "video", "video decoding time 3243 ms not after the previous 3243 ms")
    health.repaired([dup, dup, Repair(RepairKind.KEYFRAME_FLAG, "video", "flag corrected")])
    health.repaired([dup])
    health.packet_dropped(PacketDropped("source", "mux", "Invalid argument"))
    health.packet_dropped(PacketDropped("source", "mux", "Invalid argument"))
    health.worker_failed()
    assert health.repairs == {"dts_not_increasing": 3, "keyframe_flag": 1}
    assert health.packets_dropped == {"mux": 2} and health.worker_failures == 1
    assert counters.seen == {"repair:dts_not_increasing": 3, "repair:keyframe_flag": 1, "drop:mux": 2, "worker": 1}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert lines[0] == ("broadcast b1: media repair dts_not_increasing (logged once per broadcast, counted in "
                        "onair_media_repairs_total): video decoding time 3243 ms not after the previous 3243 ms")
