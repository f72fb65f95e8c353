"""Issue 17 in real processes: a broadcast as a recording (MP4, poster, chat replay), and its deletion.

One 20 s RTMP broadcast (ffmpeg), with the publisher reconnecting in the middle and a comment every
2 s, is shared by the tests of this module (module fixture: the publish is the slow part):

- after the end, ``mp4_url`` downloads: H.264 + AAC, its duration within 0.5 s of the replay HLS;
  ``poster_url`` is a JPEG; a range request is answered 206;
- ``chat_url`` puts each comment at its moment in the video (the replay playlist's program
  date-time at its publication), never a removed one, and an erased viewer's comments leave it;
- in Chromium, the watch page of the ended broadcast shows comment k when the video reaches it
  (± 1 s), hides it after a seek back before it, never shows the removed one;
- ``DELETE`` removes every file and every chat/reaction/archive record (disk and SQLite).

Retention expiry (on Redis) and the node crash have their own broadcasts.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import m3u8
import pytest

from tests.broadcaster.chat_support import Viewer, connect
from tests.support.hls import fetch
from tests.support.node import ADMIN_TOKEN, NodeProcess
from tests.support.publish import ffmpeg_publish
from tests.support.watch import open_watch_page

pytestmark = pytest.mark.e2e

HALF = 10  # seconds each publisher sends
COMMENT_EVERY = 2.0


@dataclass
class Broadcast:
    node: NodeProcess
    id: str
    host_token: str
    stream_key: str
    #: the comments as the chat published them (id, ts, text, question), in order
    comments: list[dict[str, Any]] = field(default_factory=list)
    removed_id: str = ""
    erased_viewer: str = ""
    erased_ids: list[str] = field(default_factory=list)
    made_in: float = 0.0

    def api(self, method: str, path: str, body: Any = None, token: str | None = ADMIN_TOKEN) -> tuple[int, Any]:
        return self.node.request(method, path, body, token=token)

    def recording(self) -> dict[str, Any]:
        status, doc = self.api("GET", f"/api/broadcasts/{self.id}/recording", token=None)
        assert status == 200, doc
        return doc


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout} s")


async def _chat_while_publishing(record: Broadcast) -> None:
    """Publish HALF s, let the publisher drop and come back for HALF s more, commenting every 2 s."""
    loop = asyncio.get_running_loop()
    node, bid = record.node, record.id
    async with aiohttp.ClientSession() as session:
        alice = await connect(f"{node.ws_base}/ws/{bid}", session, name="alice")
        bob = await connect(f"{node.ws_base}/ws/{bid}", session, name="bob")
        record.erased_viewer = bob.events[0]["you"]["id"]
        first = ffmpeg_publish(node.rtmp_url(record.stream_key), seconds=HALF)
        await loop.run_in_executor(None, node.wait_media, bid)
        second: subprocess.Popen[bytes] | None = None
        k = 0
        started = time.monotonic()
        while second is None or second.poll() is None:
            if first.poll() is not None and second is None:
                assert first.returncode == 0, first.stderr.read().decode() if first.stderr else ""
                await loop.run_in_executor(None, node.wait_status, bid, "reconnecting", 15)
                second = ffmpeg_publish(node.rtmp_url(record.stream_key), seconds=HALF)
            author: Viewer = bob if k in (2, 6) else alice
            await author.comment(f"moment {k} of the show", question=(k == 4))
            echo = await alice.expect("comment", text=f"moment {k} of the show", timeout=10)
            record.comments.append(echo)
            if author is bob:
                record.erased_ids.append(echo["id"])
            if k % 3 == 0:
                await alice.send({"type": "react", "kind": "like"})
            k += 1
            await asyncio.sleep(max(0.0, started + k * COMMENT_EVERY - time.monotonic()))
        assert second.returncode == 0, second.stderr.read().decode() if second.stderr else ""
        record.removed_id = record.comments[3]["id"]
        status, doc = await loop.run_in_executor(None, lambda: node.request(
            "DELETE", f"/api/broadcasts/{bid}/moderation/comments/{record.removed_id}", token=record.host_token))
        assert status == 200, doc
        for viewer in (alice, bob):
            await viewer.ws.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broadcast]:
    node = NodeProcess(tmp_path_factory.mktemp("recordings") / "node", reconnect_grace=15)
    node.start()
    try:
        doc = node.create_broadcast("recorded")
        record = Broadcast(node, doc["id"], doc["host_token"], doc["stream_key"])
        asyncio.run(_chat_while_publishing(record))
        assert node.request("POST", f"/api/broadcasts/{record.id}/end")[0] == 200
        ended = time.monotonic()
        duration = 2 * HALF
        # the bound: ready within twice the broadcast's duration after its end
        _wait(lambda: record.recording()["status"] == "ready", 2 * duration, "a ready recording")
        record.made_in = time.monotonic() - ended
        print(f"recording ready {record.made_in:.2f} s after the end")
        yield record
    finally:
        node.stop()


def _replay_playlist(record: Broadcast, rendition: str = "source") -> m3u8.M3U8:
    url = f"{record.node.base}/hls/{record.id}/{rendition}/index.m3u8"
    return m3u8.loads(fetch(url).decode(), uri=url)


def _position(playlist: m3u8.M3U8, wall: float) -> float:
    """Where in the replay the media live at ``wall`` (epoch seconds) is, from its program date-times."""
    position, found = 0.0, 0.0
    for segment in playlist.segments:
        date = segment.current_program_date_time.timestamp()
        if date <= wall:
            found = position + min(wall - date, segment.duration)
        position += segment.duration
    return found


def test_the_mp4_is_h264_and_aac_as_long_as_the_replay_with_a_poster_and_ranges(recorded: Broadcast,
                                                                              ffprobe: str, tmp_path: Path) -> None:
    doc = recorded.recording()
    replay = _replay_playlist(recorded)
    assert replay.is_endlist
    assert sum(1 for s in replay.segments if s.discontinuity) == 1  # the reconnect
    hls_duration = sum(s.duration for s in replay.segments)
    assert abs(doc["duration"] - hls_duration) < 0.01
    assert doc["hls_url"].endswith(f"/hls/{recorded.id}/master.m3u8")

    mp4 = tmp_path / "recording.mp4"
    with urllib.request.urlopen(doc["mp4_url"], timeout=30) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "video/mp4"
        mp4.write_bytes(resp.read())
    assert mp4.stat().st_size == doc["size"]
    probe = json.loads(subprocess.run([ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json",
                                       str(mp4)], capture_output=True, check=True).stdout)
    codecs = sorted(s["codec_name"] for s in probe["streams"])
    assert codecs == ["aac", "h264"], codecs
    assert abs(float(probe["format"]["duration"]) - hls_duration) <= 0.5, (probe["format"]["duration"], hls_duration)
    # faststart: the index (moov) before the media (mdat)
    head = mp4.read_bytes()[:4096]
    assert 0 <= head.find(b"moov") < 4096 and b"mdat" not in head[:head.find(b"moov")]

    request = urllib.request.Request(doc["mp4_url"], headers={"Range": "bytes=100-1099"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 100-1099/{doc['size']}"
        assert resp.read() == mp4.read_bytes()[100:1100]

    with urllib.request.urlopen(doc["poster_url"], timeout=10) as resp:
        assert resp.headers["Content-Type"] == "image/jpeg"
        jpeg = resp.read()
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(jpeg)
    stream = json.loads(subprocess.run([ffprobe, "-v", "error", "-show_streams", "-of", "json", str(poster)],
                                       capture_output=True, check=True).stdout)["streams"][0]
    assert stream["codec_name"] == "mjpeg" and (stream["width"], stream["height"]) == (640, 360)


def test_chat_url_places_each_comment_at_its_moment_without_removed_ones(recorded: Broadcast) -> None:
    doc = recorded.recording()
    status, entries = recorded.api("GET", doc["chat_url"].split(str(recorded.node.http_port), 1)[1], token=None)
    assert status == 200
    replay = _replay_playlist(recorded)
    comments = [e for e in entries if e["type"] == "comment"]
    expected = [c for c in recorded.comments if c["id"] != recorded.removed_id]
    assert [c["id"] for c in comments] == [c["id"] for c in expected]
    assert len(comments) >= 9
    for entry, posted in zip(comments, expected):
        assert entry["text"] == posted["text"] and entry["question"] == posted["question"]
        assert abs(entry["t"] - _position(replay, posted["ts"] / 1000)) <= 0.05, entry
    ts = [c["t"] for c in comments]
    assert ts == sorted(ts) and 0 <= ts[0] and ts[-1] <= sum(s.duration for s in replay.segments)
    reactions = [e for e in entries if e["type"] == "reactions"]
    assert sum(e["counts"].get("like", 0) for e in reactions) == sum(1 for k in range(len(recorded.comments))
                                                                      if k % 3 == 0)


def test_erasing_a_viewer_removes_their_comments_from_chat_url(recorded: Broadcast) -> None:
    status, result = recorded.api("POST", f"/api/viewers/{recorded.erased_viewer}/erase")
    assert status == 200, result
    status, entries = recorded.api("GET", f"/api/broadcasts/{recorded.id}/recording/chat", token=None)
    ids = {e.get("id") for e in entries}
    assert recorded.erased_ids and not ids & set(recorded.erased_ids)
    assert len([e for e in entries if e["type"] == "comment"]) == len(recorded.comments) - 1 - len(recorded.erased_ids)


_WATCH_APPEARANCES = """() => {
  const video = document.getElementById('video');
  video.pause();
  window.seen = {};
  const note = () => {
    for (const li of document.querySelectorAll('#replay li')) {
      if (!li.hidden && !(li.dataset.id in window.seen)) window.seen[li.dataset.id] = video.currentTime;
    }
  };
  new MutationObserver(note).observe(document.getElementById('replay'),
                                     {subtree: true, childList: true, attributes: true});
}"""


def test_the_replay_page_shows_each_comment_when_the_video_reaches_it(recorded: Broadcast, chromium: Any) -> None:
    bid = recorded.id
    page, errors = open_watch_page(chromium, f"{recorded.node.base}/watch/{bid}")
    page.wait_for_function("() => window.onairReplay && window.onairReplay.ready", timeout=20_000)
    assert page.evaluate("document.getElementById('video').poster").endswith(f"/recordings/{bid}/poster.jpg")
    assert page.evaluate("document.getElementById('chat').hidden") is True
    replay = _replay_playlist(recorded)
    shown = [c for c in recorded.comments if c["id"] != recorded.removed_id and c["id"] not in recorded.erased_ids]
    target = shown[-3]  # posted after the publisher's reconnect
    moment = _position(replay, target["ts"] / 1000)
    page.evaluate(_WATCH_APPEARANCES)
    page.evaluate(f"() => {{ const v = document.getElementById('video'); v.currentTime = {moment - 3}; v.play(); }}")
    page.wait_for_function(f"() => '{target['id']}' in window.seen", timeout=20_000)
    seen = page.evaluate("window.seen")
    assert abs(seen[target["id"]] - moment) <= 1.0, (seen[target["id"]], moment)
    # everything said before it is shown (questions in their list), the removed comment never
    earlier = [c for c in shown if _position(replay, c["ts"] / 1000) < moment - 3]
    assert {c["id"] for c in earlier} <= set(seen)
    question = next(c for c in shown if c["question"])
    assert page.evaluate(f"document.querySelector('#replay-questions li[data-id=\"{question['id']}\"]') !== null")
    # seeking back before it hides it again
    page.evaluate(f"() => {{ const v = document.getElementById('video'); v.pause(); v.currentTime = {moment - 2}; }}")
    page.wait_for_function(f"() => document.querySelector('#replay li[data-id=\"{target['id']}\"]').hidden",
                           timeout=5_000)
    assert page.evaluate(f"document.querySelector('#replay li[data-id=\"{earlier[-1]['id']}\"]').hidden") is False
    assert recorded.removed_id not in page.evaluate("window.seen")
    assert page.evaluate(f"document.querySelector('[data-id=\"{recorded.removed_id}\"]')") is None
    assert page.evaluate("document.querySelectorAll('#reaction-strip .reaction-mark').length") >= 1
    assert errors == []
    page.close()


def test_delete_removes_every_file_and_record(recorded: Broadcast) -> None:
    node, bid = recorded.node, recorded.id
    data = node.data_dir
    assert (data / "hls" / bid).is_dir() and (data / "recordings" / bid / "recording.mp4").is_file()

    def rows() -> dict[str, int]:
        with sqlite3.connect(data / "recordings.db") as db:
            counts = {table: db.execute(f"SELECT count(*) FROM {table} WHERE broadcast_id = ?", (bid,)).fetchone()[0]
                      for table in ("comments", "reactions")}
        with sqlite3.connect(data / "moderation.db") as db:
            counts["archive"] = db.execute("SELECT count(*) FROM archive WHERE broadcast_id = ?", (bid,)).fetchone()[0]
        return counts

    assert all(rows().values()), rows()
    assert recorded.api("DELETE", f"/api/broadcasts/{bid}/recording", token=None)[0] == 401
    assert recorded.api("DELETE", f"/api/broadcasts/{bid}/recording", token=recorded.host_token)[0] == 401
    status, doc = recorded.api("DELETE", f"/api/broadcasts/{bid}/recording")
    assert status == 200 and doc["status"] == "deleted", doc
    assert not (data / "hls" / bid).exists()
    assert sorted(p.name for p in (data / "recordings" / bid).iterdir()) == ["recording.json"]
    assert rows() == {"comments": 0, "reactions": 0, "archive": 0}
    assert recorded.recording()["status"] == "deleted"
    assert node.request("GET", f"/recordings/{bid}/recording.mp4", token=None)[0] == 404
    assert node.request("GET", f"/hls/{bid}/master.m3u8", token=None)[0] == 404
    assert node.request("GET", f"/api/broadcasts/{bid}/recording/chat", token=None)[0] == 410
    # the chat bus forgot the history too: a newcomer gets none
    async def history() -> list[Any]:
        async with aiohttp.ClientSession() as session:
            viewer = await connect(f"{node.ws_base}/ws/{bid}", session, name="late")
            await viewer.ws.close()
            return viewer.events[0]["comments"]
    assert asyncio.run(history()) == []
