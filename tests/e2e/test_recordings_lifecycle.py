"""Issue 17: a recording survives a node crash, and expires by itself (Redis cluster state).

- A node killed (``kill -9``) mid-broadcast and restarted on its data dir: the recording made when the
  broadcast ends holds the media from before the crash (and what came after, past a discontinuity).
- Object storage (moto's S3 API server): a failed upload is reported and retried; the uploaded MP4
  is checked, served from the storage once the local copy is gone, and deleted with the recording.
- Retention: a recording whose (per-broadcast) retention has passed is deleted by the node on its
  own, logged, with every file and every chat, reaction and archive record, here in Redis.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from typing import Any

import aiohttp
import pytest
import redis

from tests.broadcaster.chat_support import connect
from tests.support.node import NodeProcess
from tests.support.publish import ffmpeg_publish
from tests.support.s3 import MotoServer, moto_server  # noqa: F401

pytestmark = pytest.mark.e2e


def _wait_recording(node: NodeProcess, bid: str, status: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        code, doc = node.request("GET", f"/api/broadcasts/{bid}/recording", token=None)
        if code == 200 and doc["status"] == status:
            return doc
        time.sleep(0.2)
    raise AssertionError(f"recording of {bid} is {doc.get('status')}, not {status}, after {timeout} s: {doc}")


def _segments(node: NodeProcess, bid: str) -> int:
    journal = node.data_dir / "hls" / bid / "source" / "segments.jsonl"
    return len(journal.read_text().splitlines()) if journal.exists() else 0


def test_a_killed_node_keeps_the_media_from_before_the_crash_in_the_recording(node_factory, ffprobe: str,
                                                                             tmp_path) -> None:
    node: NodeProcess = node_factory(reconnect_grace=30)
    doc = node.create_broadcast("crash")
    bid, key = doc["id"], doc["stream_key"]
    before = ffmpeg_publish(node.rtmp_url(key), seconds=60)
    node.wait_status(bid, "live", timeout=15)
    deadline = time.monotonic() + 30
    while _segments(node, bid) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    written = _segments(node, bid)
    assert written >= 5
    node.kill()
    before.wait(timeout=30)
    node.start()
    assert node.broadcast(bid)["status"] == "reconnecting"
    assert _wait_recording(node, bid, "recording", 5)["duration"] >= written * 0.9
    after = ffmpeg_publish(node.rtmp_url(key), seconds=3)
    assert after.wait(timeout=60) == 0
    node.wait_status(bid, "reconnecting", timeout=15)
    assert node.request("POST", f"/api/broadcasts/{bid}/end")[0] == 200
    recording = _wait_recording(node, bid, "ready", 30)
    assert recording["duration"] >= written * 0.9 + 2
    mp4 = tmp_path / "crash.mp4"
    with urllib.request.urlopen(recording["mp4_url"], timeout=30) as resp:
        mp4.write_bytes(resp.read())
    probe = json.loads(subprocess.run(
        [ffprobe, "-v", "error", "-count_packets", "-show_streams", "-show_format", "-of", "json", str(mp4)],
        capture_output=True, check=True).stdout)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    # the frames of every segment written before the crash (25 fps, 1 s segments) are in the MP4
    assert int(video["nb_read_packets"]) >= written * 25 * 0.9
    assert abs(float(probe["format"]["duration"]) - recording["duration"]) <= 0.5


def _keys_of(client: redis.Redis, bid: str) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(match=f"*{{{bid}}}*"))


def _archived(client: redis.Redis, bid: str) -> int:
    return sum(1 for key in client.scan_iter(match="onair:mod:archive:*")
               for raw in client.lrange(key, 0, -1) if json.loads(raw)["broadcast_id"] == bid)


def test_retention_expiry_deletes_the_recording_and_its_records_in_redis(node_factory, redis_url: str) -> None:
    node: NodeProcess = node_factory(redis_url=redis_url, retention_days=30)
    doc = node.create_broadcast("short-lived")
    bid, key = doc["id"], doc["stream_key"]
    other = node.create_broadcast("kept")["id"]
    client = redis.Redis.from_url(redis_url)

    async def chat() -> None:
        async with aiohttp.ClientSession() as session:
            for target in (bid, other):
                viewer = await connect(f"{node.ws_base}/ws/{target}", session, name="viewer")
                await viewer.comment(f"hello {target}")
                await viewer.expect("comment")
                await viewer.send({"type": "react", "kind": "love"})
                await viewer.expect("reactions")
                await viewer.ws.close()

    publisher = ffmpeg_publish(node.rtmp_url(key), seconds=3)
    node.wait_media(bid)
    asyncio.run(chat())
    assert publisher.wait(timeout=30) == 0
    assert node.request("POST", f"/api/broadcasts/{bid}/end")[0] == 200
    ready = _wait_recording(node, bid, "ready", 20)
    assert ready["retention_days"] is None and ready["expires_at"] == pytest.approx(ready["ended_at"] + 30 * 86400)
    assert any(k.startswith("onair:rec:") for k in _keys_of(client, bid))
    assert any(k.startswith("onair:chat:") and k.endswith(":hist") for k in _keys_of(client, bid))
    assert _archived(client, bid) == 1 and _archived(client, other) == 1

    for bad in ({"retention_days": -1}, {"retention_days": "1"}, {"retention_days": 1e9}, {"days": 1}, {}):
        status, body = node.request("PATCH", f"/api/broadcasts/{bid}/recording", bad)
        assert status == 400 and "retention_days" in body["error"], (bad, body)
    assert node.request("PATCH", f"/api/broadcasts/{bid}/recording", {"retention_days": 0.0001}, token=None)[0] == 401
    # about 9 s: the node's next scans find it expired
    status, doc = node.request("PATCH", f"/api/broadcasts/{bid}/recording", {"retention_days": 0.0001})
    assert status == 200 and doc["retention_days"] == 0.0001
    gone = _wait_recording(node, bid, "deleted", 30)
    assert gone["deleted_by"] == "retention" and "mp4_url" not in gone
    assert f"recording {bid} expired (retention 0.0001 days): deleting it" in node.log()
    assert not (node.data_dir / "hls" / bid).exists()
    assert [p.name for p in (node.data_dir / "recordings" / bid).iterdir()] == ["recording.json"]
    # no chat, reaction or replay record of it in Redis; what is left is the broadcast's, not the recording's:
    # its comment counter, presence, and per-viewer limits that expire by themselves
    left = [k for k in _keys_of(client, bid) if not k.startswith("onair:registry")]
    assert not [k for k in left if k.startswith("onair:rec:") or k.rsplit(":", 1)[-1] in
                ("hist", "removed", "reactions", "pinned")], left
    for k in left:
        kind = k.split("}:", 1)[1].split(":", 1)[0]
        assert kind in ("seq", "viewers", "addr") or k.startswith("onair:mod:dup:"), k
        if kind == "addr" or k.startswith("onair:mod:dup:"):
            assert client.ttl(k) > 0, k
    assert _archived(client, bid) == 0
    # the other broadcast lost nothing
    assert _archived(client, other) == 1 and any(k.startswith("onair:rec:") for k in _keys_of(client, other))
    client.close()


def test_with_object_storage_the_recording_is_uploaded_retried_served_and_deleted(
        node_factory, moto_server: MotoServer, ffprobe: str, tmp_path) -> None:  # noqa: F811
    s3 = moto_server.client()
    node: NodeProcess = node_factory(recording_store="s3://onair-recs/prod", recording_store_endpoint=moto_server.url,
                                     recording_local_grace=3)
    doc = node.create_broadcast("stored")
    bid, key = doc["id"], doc["stream_key"]
    publisher = ffmpeg_publish(node.rtmp_url(key), seconds=4)
    node.wait_media(bid)
    assert publisher.wait(timeout=30) == 0
    assert node.request("POST", f"/api/broadcasts/{bid}/end")[0] == 200
    # the bucket does not exist yet: the upload fails, is reported, and retried
    deadline = time.monotonic() + 30
    recording: dict[str, Any] = {}
    while time.monotonic() < deadline:
        recording = node.request("GET", f"/api/broadcasts/{bid}/recording", token=None)[1]
        if (recording.get("storage") or {}).get("state") == "failed":
            break
        time.sleep(0.2)
    storage = recording["storage"]
    assert storage["state"] == "failed" and storage["attempts"] >= 1 and "NoSuchBucket" in storage["error"], storage
    assert recording["status"] == "ready"  # served from the local copy meanwhile
    s3.create_bucket(Bucket="onair-recs")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        recording = node.request("GET", f"/api/broadcasts/{bid}/recording", token=None)[1]
        if recording["storage"]["state"] == "uploaded":
            break
        time.sleep(0.2)
    assert recording["storage"]["state"] == "uploaded" and recording["storage"]["attempts"] >= 2, recording
    head = s3.head_object(Bucket="onair-recs", Key=f"prod/{bid}/recording.mp4")
    assert head["ContentLength"] == recording["size"]
    assert f"recording {bid}: upload attempt 1 failed" in node.log()

    # after the grace the local copy goes; the MP4 is then served from the storage (presigned redirect)
    local = node.data_dir / "recordings" / bid / "recording.mp4"
    deadline = time.monotonic() + 30
    while local.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not local.exists()
    assert node.request("GET", f"/api/broadcasts/{bid}/recording", token=None)[1]["storage"]["local_copy"] is False
    mp4 = tmp_path / "stored.mp4"
    with urllib.request.urlopen(recording["mp4_url"], timeout=30) as resp:  # follows the redirect
        assert resp.url.startswith(moto_server.url)
        mp4.write_bytes(resp.read())
    assert mp4.stat().st_size == recording["size"]
    probe = json.loads(subprocess.run([ffprobe, "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                       str(mp4)], capture_output=True, check=True).stdout)
    assert sorted(s["codec_name"] for s in probe["streams"]) == ["aac", "h264"]
    assert abs(float(probe["format"]["duration"]) - recording["duration"]) <= 0.5
    request = urllib.request.Request(recording["mp4_url"], headers={"Range": "bytes=0-99"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 206 and resp.read() == mp4.read_bytes()[:100]

    status, gone = node.request("DELETE", f"/api/broadcasts/{bid}/recording")
    assert status == 200 and gone["status"] == "deleted"
    assert s3.list_objects_v2(Bucket="onair-recs").get("KeyCount", 0) == 0
