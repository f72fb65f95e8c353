"""Recordings in process: where the chat replay puts comments (pure), and who may read a restricted
broadcast's recording (its gate, tried from outside with no credential, wrong, expired, tampered and
foreign grants)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from broadcaster.recordings import meta
from broadcaster.recordings.chat_replay import MediaClock, replay_entries
from broadcaster.recordings.meta import RecordingMeta, RecordingStatus
from ingest.hls.playlist import Segment
from tests.broadcaster.moderation_support import ModNode
from tests.support.playback import tamper

T0 = 1_800_000_000.0


def _segments() -> list[Segment]:
    # 3 s, then the publisher is away for 4 s, then 2 s more (after a discontinuity)
    return [Segment(0, 1.0, "s0.m4s", program_date_time=T0), Segment(1, 1.0, "s1.m4s", program_date_time=T0 + 1),
            Segment(2, 1.0, "s2.m4s", program_date_time=T0 + 2),
            Segment(3, 1.0, "s3.m4s", discontinuity=True, program_date_time=T0 + 7),
            Segment(4, 1.0, "s4.m4s", program_date_time=T0 + 8)]


def test_the_media_clock_maps_publication_times_into_the_recording() -> None:
    clock = MediaClock(_segments())
    assert clock.duration == 5.0
    assert clock.position(T0 - 10) == 0.0  # before the first frame
    assert clock.position(T0 + 0.25) == 0.25
    assert clock.position(T0 + 2.5) == 2.5
    assert clock.position(T0 + 5) == 3.0  # while the publisher was away: where the media resumes
    assert clock.position(T0 + 7.5) == 3.5
    assert clock.position(T0 + 60) == 5.0  # after the end


def test_replay_entries_are_in_media_order_and_leave_removed_comments_out() -> None:
    clock = MediaClock(_segments())
    comments = [{"id": "c1", "seq": 1, "ts": int((T0 + 0.5) * 1000), "author": {"id": "v1"}, "text": "hi",
                 "question": False},
                {"id": "c2", "seq": 2, "ts": int((T0 + 7.5) * 1000), "author": {"id": "v2"}, "text": "why?",
                 "question": True},
                {"id": "c3", "seq": 3, "ts": int((T0 + 1) * 1000), "author": {"id": "v1"}, "text": "gone",
                 "removed": True}]
    entries = replay_entries(clock, comments, {int(T0) + 1: {"like": 3}})
    assert [(e["type"], e.get("id"), e["t"]) for e in entries] == [
        ("comment", "c1", 0.5), ("reactions", None, 1.5), ("comment", "c2", 3.5)]
    assert entries[2]["question"] is True and entries[1]["counts"] == {"like": 3}


@pytest.fixture
async def node(tmp_path: Path, aiohttp_client: Any) -> ModNode:
    node = ModNode("memory", tmp_path)
    return await node.start(aiohttp_client)


def _plant_ready_recording(node: ModNode, bid: str) -> bytes:
    """A ready recording's files, as the service leaves them (the media itself is the e2e tests')."""
    directory = node.tmp_path / "data" / "recordings" / bid
    body = bytes(range(256)) * 40
    directory.mkdir(parents=True)
    (directory / meta.MP4).write_bytes(body)
    (directory / meta.POSTER).write_bytes(b"\xff\xd8jpeg\xff\xd9")
    meta.save(directory, RecordingMeta(status=RecordingStatus.READY, duration=10.0, size=len(body), ended_at=T0))
    return body


async def test_a_restricted_recording_is_only_for_grants_of_its_broadcast(node: ModNode) -> None:
    b = await node.create_broadcast("restricted")
    bid, host = b["id"], b["host_token"]
    body = _plant_ready_recording(node, bid)
    path = f"/api/broadcasts/{bid}/recording"
    unknown = (404, {"error": f"no broadcast {bid!r}"})
    status, token = await node.call("POST", f"/api/broadcasts/{bid}/viewer-tokens", host, {"name": "Ann"})
    assert status == 201
    other = await node.create_broadcast("restricted")
    _, foreign = await node.call("POST", f"/api/broadcasts/{other['id']}/viewer-tokens", other["host_token"],
                                 {"name": "Bo"})
    _, short = await node.call("POST", f"/api/broadcasts/{bid}/viewer-tokens", host, {"name": "Cy", "ttl": 0.5})
    for credential in (None, "not-a-grant", token["token"], tamper(token["grant"]), foreign["grant"]):
        for what in (path, f"{path}/chat", f"/recordings/{bid}/recording.mp4", f"/recordings/{bid}/poster.jpg"):
            assert await node.call("GET", what, credential) == unknown, (what, credential)
            resp = await node.client.get(what, params={"grant": credential} if credential else None)
            assert resp.status == 404, (what, credential)
    await asyncio.sleep(1.1)
    assert await node.call("GET", path, short["grant"]) == (403, {"error": "playback grant has expired"})

    status, doc = await node.call("GET", path, token["grant"])
    assert status == 200 and doc["status"] == "ready", doc
    suffix = f"?grant={token['grant']}"
    for key in ("mp4_url", "poster_url", "chat_url", "hls_url"):
        assert doc[key].endswith(suffix), key
    mp4 = doc["mp4_url"].split(str(node.client.port), 1)[1]
    resp = await node.client.get(mp4, headers={"Range": "bytes=10-19"})
    assert resp.status == 206 and await resp.read() == body[10:20]
    assert resp.headers["Cache-Control"].startswith("private")
    resp = await node.client.get(doc["chat_url"].split(str(node.client.port), 1)[1])
    assert resp.status == 200 and await resp.json() == []
    # the host and the admin need no grant; only the admin may delete
    assert (await node.call("GET", path, host))[0] == 200
    assert (await node.call("DELETE", path, host))[0] == 401
    assert (await node.call("DELETE", path, token["grant"]))[0] == 401
    status, gone = await node.call("DELETE", path)
    assert status == 200 and gone["status"] == "deleted" and "mp4_url" not in gone
    assert (await node.client.get(mp4)).status == 404


async def test_a_broadcast_without_media_has_no_recording_urls_yet(node: ModNode) -> None:
    b = await node.create_broadcast("public")
    status, doc = await node.call("GET", f"/api/broadcasts/{b['id']}/recording", None)
    assert status == 200 and doc["status"] == "recording" and "mp4_url" not in doc
    assert (await node.call("GET", f"/recordings/{b['id']}/recording.mp4", None))[0] == 404
    assert (await node.call("GET", f"/recordings/{b['id']}/../../onair.db", None))[0] == 404
    assert (await node.call("GET", f"/recordings/{b['id']}/recording.json", None))[0] == 404
    assert (await node.call("GET", "/api/broadcasts/nope/recording", None))[0] == 404
