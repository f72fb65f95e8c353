"""The pure parts of simulcast: the per-target queue (keyframe start, drop to keyframe, timestamps),
the retry backoff, destination parsing and scrubbing."""

from __future__ import annotations

import pytest

from broadcaster.simulcast.forwarder import ForwarderOptions, backoff
from broadcaster.simulcast.queue import ForwardQueue
from broadcaster.simulcast.targets import InvalidTarget, parse_destination, scrub
from ingest.media import MediaKind, MediaUnit

V = MediaKind.VIDEO
A = MediaKind.AUDIO


def video(dts: int, key: bool = False, size: int = 100) -> MediaUnit:
    return MediaUnit(V, "h264", dts, 0, key, False, b"v" * size)


def audio(dts: int) -> MediaUnit:
    return MediaUnit(A, "aac", dts, 0, True, False, b"a" * 10)


VCONF = MediaUnit(V, "h264", 0, 0, True, True, b"avcC")
ACONF = MediaUnit(A, "aac", 0, 0, True, True, b"asc")


def drain(q: ForwardQueue) -> list[tuple[MediaUnit, int]]:
    out = []
    while (item := q.pop()) is not None:
        out.append(item)
    return out


def test_nothing_is_queued_until_a_connection_publishes() -> None:
    q = ForwardQueue()
    for unit in (VCONF, ACONF, video(1000, True), audio(1010)):
        assert not q.push(unit)
    assert len(q) == 0 and q.configs == {V: VCONF, A: ACONF}


def test_a_connection_starts_at_a_keyframe_with_sequence_headers_first_and_timestamps_from_zero() -> None:
    q = ForwardQueue()
    q.push(VCONF)
    q.push(ACONF)
    q.start()
    assert not q.push(video(5000))        # not a keyframe
    assert not q.push(audio(5010))        # audio before the first keyframe
    assert q.push(video(5040, key=True))
    assert not q.push(audio(5020))        # audio from before that keyframe
    q.push(audio(5050))
    q.push(video(5080))
    got = [(u.kind, u.config, ts) for u, ts in drain(q)]
    assert got == [(V, True, 0), (A, True, 0), (V, False, 0), (A, False, 10), (V, False, 40)]


def test_a_new_sequence_header_mid_stream_is_forwarded_in_place() -> None:
    q = ForwardQueue()
    q.start()
    q.push(video(0, key=True))
    new_conf = MediaUnit(V, "h264", 400, 0, True, True, b"avcC2")
    q.push(new_conf)
    assert [(u.data, ts) for u, ts in drain(q)] == [(b"v" * 100, 0), (b"avcC2", 400)]


def test_falling_behind_drops_to_the_next_keyframe_and_keeps_the_timeline() -> None:
    q = ForwardQueue(max_lag_ms=1000)
    q.start()
    q.push(video(0, key=True))
    for t in range(40, 1100, 40):
        q.push(video(t))
    assert q.drops == 1 and len(q) == 0 and q.waiting_keyframe
    assert q.dropped_units == 27  # 0, 40 … 1040: the unit that passed the bound goes too
    q.push(video(1120))                   # still waiting
    q.push(video(2000, key=True))
    assert [ts for _, ts in drain(q)] == [2000]  # the gap shows in time; nothing goes backwards


def test_the_byte_bound_drops_too() -> None:
    q = ForwardQueue(max_bytes=1000)
    q.start()
    q.push(video(0, key=True, size=600))
    q.push(video(40, size=600))
    assert q.drops == 1 and len(q) == 0


def test_a_publisher_reconnecting_continues_the_timeline_after_the_last_unit() -> None:
    q = ForwardQueue()
    q.start()
    q.push(video(100_000, key=True))
    q.push(video(100_040))
    drain(q)
    q.discontinuity()
    q.push(video(0))                      # the new publish's clock starts again
    q.push(video(0, key=True))
    q.push(audio(10))
    assert [ts for _, ts in drain(q)] == [80, 90]


def test_a_new_connection_starts_again_from_zero() -> None:
    q = ForwardQueue()
    q.start()
    q.push(video(7000, key=True))
    q.stop()
    assert not q.push(video(7040, key=True))
    q.start()
    q.push(video(9000, key=True))
    assert [ts for _, ts in drain(q)] == [0]


def test_backoff_grows_caps_and_jitters() -> None:
    options = ForwarderOptions(retry_initial=1.0, retry_max=8.0)
    assert [backoff(n, options, rand=lambda: 0.5) for n in range(6)] == [1, 2, 4, 8, 8, 8]
    assert backoff(0, options, rand=lambda: 0.0) == 0.75 and backoff(0, options, rand=lambda: 1.0) == 1.25
    assert backoff(10_000, options, rand=lambda: 0.5) == 8


def test_destinations() -> None:
    d = parse_destination("rtmps://live-api-s.facebook.com:443/rtmp/")
    assert (d.host, d.port, d.app, d.tls, d.tc_url) == \
        ("live-api-s.facebook.com", 443, "rtmp", True, "rtmps://live-api-s.facebook.com/rtmp")
    d = parse_destination("rtmp://a.rtmp.youtube.com/live2")
    assert (d.port, d.tc_url) == (1935, "rtmp://a.rtmp.youtube.com/live2")
    d = parse_destination("rtmp://[::1]:1936/app/inst")
    assert (d.host, d.port, d.app, d.tc_url) == ("::1", 1936, "app/inst", "rtmp://[::1]:1936/app/inst")
    with pytest.raises(InvalidTarget):
        parse_destination("srt://h/live")


def test_scrub_removes_the_key_and_its_quoted_form() -> None:
    assert scrub("publish abc/def ghi failed: abc%2Fdef%20ghi", "abc/def ghi") == "publish abc/… failed: abc/…"
    assert scrub("nothing here", "secret") == "nothing here"


def test_a_target_connecting_mid_gop_starts_from_the_latest_keyframe() -> None:
    from broadcaster.simulcast.hub import RecentGop

    gop = RecentGop(max_ms=1000)
    for unit in (video(0), audio(10), video(40, key=True), audio(50), video(80)):
        gop.add(unit)
    assert [(u.kind, u.dts) for u in gop.units()] == [(V, 40), (A, 50), (V, 80)]
    q = ForwardQueue()
    q.configs[V] = VCONF
    q.start()
    for unit in gop.units():
        q.push(unit)
    assert [(u.config, ts) for u, ts in drain(q)] == [(True, 0), (False, 0), (False, 10), (False, 40)]
    gop.add(video(1100))  # a GOP longer than the bound is not kept: new targets wait for a keyframe
    assert gop.units() == []
