"""Issue 13 §2 in real processes: a node killed with ``kill -9`` strands nothing.

- Restarted on the same data dir (embedded SQLite, or with Redis), the node resumes
  the broadcast it had live (``reconnecting``), the same key publishes again at once,
  and the replay holds every segment from before the crash (not only the live window
  the node was showing) and the new media after an ``#EXT-X-DISCONTINUITY``.
- Two nodes on one Redis: when A dies, B sees its broadcasts' leases expire, reports
  them ``reconnecting`` and then ``ended`` within 15 s, and takes a publisher that
  comes back to it.  An admin force-end on B stops a broadcast live on A.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import m3u8
import pytest

from tests.support.hls import fetch, init_url, load_media_playlists, probe_segment
from tests.support.node import NodeProcess
from tests.support.publish import ffmpeg_publish

pytestmark = pytest.mark.e2e

AFTER_SECONDS = 6


def _complete_segments(url: str) -> tuple[int, list[m3u8.Segment]]:
    """(media sequence, complete segments) of a live media playlist (LL-HLS parts have no URI)."""
    playlist = m3u8.loads(fetch(url).decode(), uri=url)
    return playlist.media_sequence or 0, [s for s in playlist.segments if s.uri]


def _wait_playlist(url: str, ready: Callable[[int, list[m3u8.Segment]], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready(*_complete_segments(url)):
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} never got there in {timeout} s")


def _wait_window_slid(url: str, past: int) -> None:
    """Wait until the live window no longer lists segment ``past``."""
    _wait_playlist(url, lambda first, _complete: first > past)


@pytest.mark.parametrize("registry", ["embedded", "redis"])
def test_a_killed_node_resumes_its_broadcast_and_the_replay_holds_both_parts(node_factory, ffprobe, registry: str,
                                                                             request: pytest.FixtureRequest) -> None:
    options: dict[str, Any] = {"live_window": 3, "reconnect_grace": 30}
    if registry == "redis":
        options["redis_url"] = request.getfixturevalue("redis_url")
    node: NodeProcess = node_factory(**options)
    doc = node.create_broadcast("crash")
    bid, key = doc["id"], doc["stream_key"]
    before = ffmpeg_publish(node.rtmp_url(key), seconds=120)
    node.wait_status(bid, "live", timeout=15)
    source_url = f"{node.base}/hls/{bid}/source/index.m3u8"
    _wait_window_slid(source_url, past=3)  # segments 0-3 are only on disk now
    written = {}  # per video rendition (a transcoded one may be a segment behind the source)
    for rendition in ("source", "240p"):
        first, complete = _complete_segments(f"{node.base}/hls/{bid}/{rendition}/index.m3u8")
        written[rendition] = first + len(complete)

    node.kill()
    assert before.wait(timeout=30) != 0  # the publisher lost its server
    restarted = time.monotonic()
    node.start()  # same data dir, same ports
    answering = time.monotonic()
    assert node.broadcast(bid)["status"] == "reconnecting"
    after = ffmpeg_publish(node.rtmp_url(key), seconds=AFTER_SECONDS)
    node.wait_status(bid, "live", timeout=15)
    accepted = time.monotonic()
    print(f"restart -> /healthz {answering - restarted:.2f} s; /healthz -> publish accepted "
          f"{accepted - answering:.2f} s")
    # the bound, from the moment the restarted node answers (ffmpeg's own start-up included)
    assert accepted - answering < 5
    assert after.wait(timeout=60) == 0, after.stderr.read().decode()
    node.wait_status(bid, "reconnecting", timeout=15)
    assert node.request("POST", f"/api/broadcasts/{bid}/end")[0] == 200

    master_url = f"{node.base}/hls/{bid}/master.m3u8"
    playlists = load_media_playlists(master_url, with_audio=True)
    assert len(playlists) == 3  # source, 240p, audio
    for url, playlist in playlists.items():
        assert playlist.is_endlist, url
        breaks = [i for i, s in enumerate(playlist.segments) if s.discontinuity]
        assert len(breaks) == 1, (url, breaks)
        assert playlist.media_sequence in (None, 0), url  # the replay starts at the first segment
        first_part, second_part = playlist.segments[:breaks[0]], playlist.segments[breaks[0]:]
        rendition = url.rsplit("/", 2)[-2]
        if rendition in written:
            assert len(first_part) >= written[rendition] > 4, (url, len(first_part), written)
        assert abs(sum(s.duration for s in second_part) - AFTER_SECONDS) <= 1.5, url
        for segment in playlist.segments:
            probe = probe_segment(ffprobe, segment.absolute_uri, init_url(segment))
            assert probe.duration > 0, segment.uri
    assert "resumed, reconnecting" in node.log()


def _status(node: NodeProcess, broadcast_id: str) -> str:
    return node.broadcast(broadcast_id)["status"]


def test_when_a_node_dies_another_reports_its_broadcasts_ended_and_takes_their_publishers(
        node_factory, redis_url: str) -> None:
    a: NodeProcess = node_factory(redis_url=redis_url, ladder="source")
    b: NodeProcess = node_factory(redis_url=redis_url, ladder="source", reconnect_grace=30)
    x, y, w = (a.create_broadcast(name) for name in ("x", "y", "w"))
    publishers = [ffmpeg_publish(a.rtmp_url(doc["stream_key"]), seconds=120) for doc in (x, y, w)]
    for doc in (x, y, w):
        a.wait_status(doc["id"], "live", timeout=20)
        assert _status(b, doc["id"]) == "live"  # B sees the shared registry
    for doc in (x, y):  # A has written segments of both
        _wait_playlist(f"{a.base}/hls/{doc['id']}/source/index.m3u8", lambda first, complete: len(complete) >= 2)

    # B can end a broadcast live on A only by force (admin); A stops it at its next lease renewal
    status, answer = b.request("POST", f"/api/broadcasts/{w['id']}/end")
    assert status == 409 and "force=true" in answer["error"]
    assert b.request("POST", f"/api/broadcasts/{w['id']}/end?force=true", token=w["host_token"])[0] == 403
    status, answer = b.request("POST", f"/api/broadcasts/{w['id']}/end?force=true")
    assert status == 200 and answer["status"] == "ended"
    assert publishers[2].wait(timeout=20) is not None  # A dropped its publisher
    a.wait_status(w["id"], "ended", timeout=5)

    a.kill()
    killed = time.monotonic()
    seen: dict[str, list[str]] = {x["id"]: [], y["id"]: []}
    ended_after: float | None = None
    comeback = None
    taken_over: dict[str, Any] | None = None
    while time.monotonic() - killed < 30 and (ended_after is None or taken_over is None):
        for bid, statuses in seen.items():
            doc = b.broadcast(bid)
            if not statuses or statuses[-1] != doc["status"]:
                statuses.append(doc["status"])
            if bid == y["id"] and comeback is not None and doc["status"] == "live" and taken_over is None:
                taken_over = doc
        if seen[x["id"]][-1] == "ended" and ended_after is None:
            ended_after = time.monotonic() - killed
        if seen[y["id"]][-1] == "reconnecting" and comeback is None:
            comeback = ffmpeg_publish(b.rtmp_url(y["stream_key"]), seconds=AFTER_SECONDS)  # back, on B
        time.sleep(0.2)
    for publisher in publishers[:2]:
        assert publisher.wait(timeout=30) != 0  # their server died
    print(f"broadcast of the killed node ended after {ended_after} s; statuses seen on B: {seen}")
    assert seen[x["id"]] == ["live", "reconnecting", "ended"]
    assert ended_after is not None and ended_after < 15

    assert comeback is not None and seen[y["id"]][:3] == ["live", "reconnecting", "live"]
    assert taken_over is not None and taken_over["live"]["protocol"] == "rtmp"  # B ingests it now
    assert comeback.wait(timeout=60) == 0, comeback.stderr.read().decode()
    b.wait_status(y["id"], "reconnecting", timeout=15)
    assert b.request("POST", f"/api/broadcasts/{y['id']}/end")[0] == 200
    # B wrote its own HLS for the part it ingested
    replay = m3u8.loads(fetch(f"{b.base}/hls/{y['id']}/source/index.m3u8").decode())
    assert replay.is_endlist and abs(sum(s.duration for s in replay.segments) - AFTER_SECONDS) <= 1.5
    assert "its publisher continues here" in b.log()

    # A comes back: it resumes neither (one ended, one moved to B) and ends what it had written as replays
    a.start()
    for doc in (x, y):
        assert _status(a, doc["id"]) == "ended"
        replay = m3u8.loads(fetch(f"{a.base}/hls/{doc['id']}/source/index.m3u8").decode())
        assert replay.is_endlist and replay.media_sequence in (None, 0) and replay.segments
    assert "ended as a replay" in a.log()
