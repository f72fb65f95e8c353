"""Blocking playlist reload and hinted-part decisions (RFC 8216bis §6.2.5.2, §6.2.6)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ingest.hls.blocking import (
    Ready,
    Reject,
    Wait,
    advance_part_limit,
    decide_part,
    decide_reload,
    hold_limit,
    holdable_part,
)
from ingest.hls.store import parse_part_uri, part_uri
from ingest.hls.watch import PlaylistPosition

# The playlist of the brief: segments 10 and 11 complete, part 0 of segment 12 listed,
# part 1 of segment 12 hinted; 0.5 s parts, 2 s segments.
BUILDING = PlaylistPosition(last_msn=11, part_msn=12, last_part=0, part_target=0.5, target_duration=2.0,
                            hint_uri="s12.p1.m4s")
# Right after segment 12 completed with four parts (0..3), before any part of segment 13.
COMPLETED = PlaylistPosition(last_msn=12, part_msn=12, last_part=3, part_target=0.5, target_duration=2.0,
                             hint_uri="s13.p0.m4s")


def reload(position, msn=None, part=None, waited=0.0):
    return decide_reload(position, None if msn is None else str(msn), None if part is None else str(part), waited)


def test_no_directive_is_answered_at_once():
    assert decide_reload(BUILDING, None, None) == Ready()


@pytest.mark.parametrize("msn, part", [(99, None), (99, 0), (None, 3), ("x", "y")])
def test_ended_or_not_live_playlists_ignore_the_directives(msn, part):
    # "A Server MUST ignore _HLS_msn and _HLS_part if the Playlist contains an EXT-X-ENDLIST tag"
    assert reload(replace(BUILDING, ended=True, hint_uri=None), msn, part) == Ready()
    assert reload(None, msn, part) == Ready()


def test_part_without_msn_is_400():
    decision = reload(BUILDING, part=1)
    assert decision == Reject(400, "_HLS_part requires _HLS_msn")


@pytest.mark.parametrize("raw", ["", "abc", "-1", "+1", " 1", "1.5", "0x10", "1e3", "١٢", str(2**64)])
def test_non_integer_or_negative_is_400(raw):
    for decision in (decide_reload(BUILDING, raw, None), decide_reload(BUILDING, "12", raw)):
        assert isinstance(decision, Reject) and decision.status == 400
        assert "decimal integer" in decision.reason


def test_the_largest_decimal_integer_is_accepted():
    assert decide_reload(BUILDING, str(2**64 - 1), None) == Reject(
        400, f"_HLS_msn={2**64 - 1} is more than 2 segments past the playlist's last segment (12)")
    assert decide_reload(BUILDING, "0011", None) == Ready()


def test_msn_alone_waits_for_the_segment_to_be_complete():
    assert reload(BUILDING, 11) == Ready()
    assert reload(BUILDING, 10) == Ready()
    # older than the playlist: "deliver the entire Playlist ... even if it is no longer in the Playlist"
    assert reload(BUILDING, 0) == Ready()
    # segment 12 has a part listed but is not a Media Segment yet
    assert reload(BUILDING, 12) == Wait(6.0)
    assert reload(COMPLETED, 12) == Ready()


def test_msn_and_part_wait_for_that_part():
    assert reload(BUILDING, 12, 0) == Ready()
    assert reload(BUILDING, 12, 1) == Wait(6.0)
    assert reload(BUILDING, 11, 0) == Ready()
    assert reload(BUILDING, 13, 0) == Wait(6.0)
    assert reload(replace(BUILDING, last_part=1), 12, 1) == Ready()
    # a later part than asked for answers too ("with a Media Sequence Number of M or later")
    assert reload(replace(BUILDING, last_msn=12, part_msn=13, last_part=0), 12, 3) == Ready()


def test_a_part_past_the_last_of_a_complete_segment_is_part_0_of_the_next():
    # "If the Client requests a Part Index greater than that of the final Partial Segment of
    # the Parent Segment, the Server MUST treat the request as one for Part Index 0 of the
    # following Parent Segment."  Segment 12 is complete, so it does not answer part 4 of it:
    assert reload(COMPLETED, 12, 3) == Ready()
    assert reload(COMPLETED, 12, 4) == Wait(6.0)
    # ... and any part index past the end is the same request, never "too far ahead"
    assert reload(COMPLETED, 12, 1000) == Wait(6.0)
    # which part 0 of segment 13 answers
    first_of_13 = replace(COMPLETED, part_msn=13, last_part=0, hint_uri="s13.p1.m4s")
    assert reload(first_of_13, 12, 4) == Ready()
    assert reload(first_of_13, 12, 1000) == Ready()
    # an older segment's overflow rolls over to a part that is already listed
    assert reload(COMPLETED, 11, 9) == Ready()


def test_msn_more_than_two_past_the_last_segment_is_400():
    # the segment being built (12) counts as the last one
    assert reload(BUILDING, 14) == Wait(6.0)
    decision = reload(BUILDING, 15)
    assert decision == Reject(400, "_HLS_msn=15 is more than 2 segments past the playlist's last segment (12)")
    assert reload(COMPLETED, 14) == Wait(6.0)
    assert isinstance(reload(COMPLETED, 15, 0), Reject)


def test_advance_part_limit():
    # "three divided by the Part Target Duration if the Part Target Duration is less than one
    # second, or three otherwise"
    assert advance_part_limit(0.5) == 6
    assert advance_part_limit(0.25) == 12
    assert advance_part_limit(1.0) == 3
    assert advance_part_limit(2.0) == 3


def test_a_part_further_ahead_than_the_advance_part_limit_is_400():
    # newest part is (12, 0); with 0.5 s parts the limit is 6 parts past it
    assert reload(BUILDING, 12, 6) == Wait(6.0)
    decision = reload(BUILDING, 12, 7)
    assert isinstance(decision, Reject) and decision.status == 400
    assert decision.reason == ("_HLS_msn=12&_HLS_part=7 is 7 parts past the playlist's last part "
                               "(segment 12 part 0); the limit is 6")
    # in the next segment, counted low: parts 0..P of segment 13 are all after (12, 0)
    assert reload(BUILDING, 13, 5) == Wait(6.0)
    assert reload(BUILDING, 13, 6).status == 400
    # one-second parts: three parts
    slow = replace(BUILDING, part_target=1.0, target_duration=4.0)
    assert reload(slow, 12, 3) == Wait(12.0)
    assert reload(slow, 12, 4).status == 400


def test_waiting_more_than_three_target_durations_is_503():
    assert hold_limit(BUILDING) == 6.0
    assert reload(BUILDING, 12, 1, waited=2.5) == Wait(3.5)
    decision = reload(BUILDING, 12, 1, waited=6.0)
    assert decision == Reject(503, "the playlist did not reach the requested position within 6 s "
                                   "(three target durations)")
    # a request that is answerable is answered, however long it waited
    assert reload(replace(BUILDING, last_part=1), 12, 1, waited=60.0) == Ready()


def test_part_names():
    assert part_uri(12, 1) == "s12.p1.m4s"
    assert parse_part_uri("s12.p1.m4s") == (12, 1)
    for name in ("s12.m4s", "init0.mp4", "s12.p1.m4s.tmp", ".s12.p1.m4s", "s-1.p0.m4s", "x12.p1.m4s"):
        assert parse_part_uri(name) is None


def test_a_missing_part_is_held_if_hinted_or_next():
    assert decide_part(BUILDING, "s12.p1.m4s") == Wait(6.0)
    # segment 12 may end after part 0: part 0 of segment 13 is next too
    assert decide_part(BUILDING, "s13.p0.m4s") == Wait(6.0)
    # after a completed segment, only the next segment's first part
    assert decide_part(COMPLETED, "s13.p0.m4s") == Wait(6.0)
    assert holdable_part(COMPLETED, "s12.p4.m4s") is False
    # a hint that is not a part name is compared by name
    assert decide_part(replace(BUILDING, hint_uri="init1.mp4"), "init1.mp4") == Wait(6.0)


@pytest.mark.parametrize("name", ["s12.p2.m4s", "s13.p1.m4s", "s14.p0.m4s", "s12.m4s", "s11.p9.m4s", "x.m4s"])
def test_a_missing_file_that_is_not_about_to_be_written_is_404(name):
    assert decide_part(BUILDING, name) == Reject(404, "not found")


def test_no_part_is_held_for_an_ended_or_unknown_playlist_or_for_too_long():
    assert decide_part(None, "s12.p1.m4s") == Reject(404, "not found")
    assert decide_part(replace(BUILDING, ended=True), "s12.p1.m4s") == Reject(404, "not found")
    assert decide_part(BUILDING, "s12.p1.m4s", waited=5.0) == Wait(1.0)
    decision = decide_part(BUILDING, "s12.p1.m4s", waited=6.0)
    assert isinstance(decision, Reject) and decision.status == 404
