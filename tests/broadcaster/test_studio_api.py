"""The studio's API, in process: scheduling details, the poster upload (checked, re-encoded, nothing
stored when refused), the health figures and their warnings, and the host-token lookup."""

from __future__ import annotations

import io
import time
from pathlib import Path

import av
import numpy as np
import pytest

from broadcaster.app import create_app
from broadcaster.config import NodeConfig
from broadcaster.studio.health import comments_per_minute, warnings
from broadcaster.studio.posters import MAX_POSTER

ADMIN = {"Authorization": "Bearer admin-secret-token"}


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path):
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token="admin-secret-token")
    return await aiohttp_client(create_app(config))


def image(codec: str, width: int, height: int, pix_fmt: str) -> bytes:
    frame = av.VideoFrame.from_ndarray(np.random.randint(0, 255, (height, width, 3), dtype=np.uint8), format="rgb24")
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    from fractions import Fraction
    context.time_base = Fraction(1, 25)
    frame = frame.reformat(format=pix_fmt)
    frame.pts = 0
    return b"".join(bytes(p) for p in [*context.encode(frame), *context.encode(None)])


async def create(client, **body):
    resp = await client.post("/api/broadcasts", json={"title": "Launch", **body}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_create_with_description_and_scheduled_start(client):
    start = time.time() + 3600
    doc = await create(client, description="  The launch  ", scheduled_start=start)
    assert doc["description"] == "The launch" and doc["scheduled_start"] == pytest.approx(start)
    assert doc["poster_url"] is None
    resp = await client.get(f"/api/public/broadcasts/{doc['id']}")
    public = await resp.json()
    assert public["scheduled_start"] == pytest.approx(start) and public["description"] == "The launch"


@pytest.mark.parametrize("body,message", [
    ({"scheduled_start": "tomorrow"}, "'scheduled_start' must be"),
    ({"scheduled_start": True}, "'scheduled_start' must be"),
    ({"scheduled_start": 1.0}, "in the past"),
    ({"scheduled_start": 1e12}, "two years ahead"),
    ({"description": 5}, "'description' must be"),
    ({"description": "x" * 2001}, "longer than 2000"),
])
async def test_bad_details_are_400_with_the_reason(client, body, message):
    resp = await client.post("/api/broadcasts", json={"title": "t", **body}, headers=ADMIN)
    assert resp.status == 400
    assert message in (await resp.json())["error"]
    resp = await client.get("/api/broadcasts", headers=ADMIN)
    assert (await resp.json())["broadcasts"] == []


async def test_poster_is_reencoded_to_a_jpeg_within_720p(client, tmp_path):
    doc = await create(client)
    png = image("png", 1920, 1200, "rgb24")
    resp = await client.put(f"/api/broadcasts/{doc['id']}/poster", data=png,
                            headers={**ADMIN, "Content-Type": "image/png"})
    assert resp.status == 200, await resp.text()
    updated = await resp.json()
    assert updated["poster_url"].endswith(f"/posters/{doc['id']}.jpg?v=" + updated["poster_url"].rsplit("=", 1)[1])
    resp = await client.get(f"/posters/{doc['id']}.jpg")
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    jpeg = await resp.read()
    with av.open(io.BytesIO(jpeg)) as container:
        assert container.format.name == "jpeg_pipe"
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1152, 720)  # 16:10 fitted to 720p
    assert (tmp_path / "posters" / f"{doc['id']}.jpg").stat().st_mode & 0o077 == 0
    # the host may replace it too
    host = {"Authorization": "Bearer " + doc["host_token"]}
    resp = await client.put(f"/api/broadcasts/{doc['id']}/poster", data=image("mjpeg", 320, 240, "yuvj420p"),
                            headers=host)
    assert resp.status == 200
    assert (await resp.json())["poster_url"] != updated["poster_url"]


def _mp4() -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height = 64, 64
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


@pytest.mark.parametrize("payload,message", [
    (b"", "empty"),
    (b"hello, this is not a picture\n" * 20, "not an image"),
    (b"%PDF-1.7\n" + b"\x00" * 4000, "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not an image"),  # a PNG signature and nothing after
    ("mp4", "not an image"),  # a video is not a poster
])
async def test_non_images_are_400_and_nothing_is_stored(client, tmp_path, payload, message):
    doc = await create(client)
    body = _mp4() if payload == "mp4" else payload
    resp = await client.put(f"/api/broadcasts/{doc['id']}/poster", data=body,
                            headers={**ADMIN, "Content-Type": "image/png"})
    assert resp.status == 400
    assert message in (await resp.json())["error"]
    assert not (tmp_path / "posters").exists()
    assert (await (await client.get(f"/api/broadcasts/{doc['id']}", headers=ADMIN)).json())["poster_url"] is None
    assert (await client.get(f"/posters/{doc['id']}.jpg")).status == 404


async def test_a_50_mb_poster_is_413_and_nothing_is_stored(client, tmp_path):
    doc = await create(client)
    big = b"\xff\xd8\xff\xe0" + b"\x00" * (50 * 1024 * 1024)
    resp = await client.put(f"/api/broadcasts/{doc['id']}/poster", data=big, headers=ADMIN)
    assert resp.status == 413
    assert (await resp.json())["error"] == f"poster larger than {MAX_POSTER} bytes"

    async def chunked():  # no Content-Length: refused once more than the limit arrived
        for _ in range(50):
            yield b"\x00" * (1024 * 1024)

    resp = await client.put(f"/api/broadcasts/{doc['id']}/poster", data=chunked(), headers=ADMIN)
    assert resp.status == 413
    assert not (tmp_path / "posters").exists()
    assert (await (await client.get(f"/api/broadcasts/{doc['id']}", headers=ADMIN)).json())["poster_url"] is None


async def test_poster_upload_gates(client):
    doc = await create(client)
    other = await create(client, title="Other")
    png = image("png", 64, 64, "rgb24")
    off_by_one = doc["host_token"][:-1] + ("y" if doc["host_token"].endswith("x") else "x")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + other["host_token"]},
                    {"Authorization": "Bearer " + off_by_one}):
        resp = await client.put(f"/api/broadcasts/{doc['id']}/poster", data=png, headers=headers)
        assert resp.status == 401, headers
    # a restricted broadcast's poster is unknown without a viewer's grant
    restricted = await create(client, visibility="restricted")
    resp = await client.put(f"/api/broadcasts/{restricted['id']}/poster", data=png, headers=ADMIN)
    assert resp.status == 200
    resp = await client.get(f"/posters/{restricted['id']}.jpg")
    assert resp.status == 404


async def test_host_token_finds_its_broadcast_only(client):
    a = await create(client)
    b = await create(client, title="B")
    resp = await client.get("/api/host/broadcast", headers={"Authorization": "Bearer " + b["host_token"]})
    assert resp.status == 200 and (await resp.json())["id"] == b["id"]
    assert "stream_key" not in await resp.json()
    for headers in ({}, {"Authorization": "Bearer host_nope"}, ADMIN,
                    {"Authorization": "Bearer " + a["host_token"] + "x"}):
        resp = await client.get("/api/host/broadcast", headers=headers)
        assert resp.status == 401


async def test_health_of_an_idle_broadcast_and_its_gates(client):
    doc = await create(client)
    resp = await client.get(f"/api/broadcasts/{doc['id']}/health", headers=ADMIN)
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "idle" and body["viewers"] == 0 and body["warnings"] == []
    resp = await client.get(f"/api/broadcasts/{doc['id']}/health",
                            headers={"Authorization": "Bearer " + doc["host_token"]})
    assert resp.status == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert (await client.get(f"/api/broadcasts/{doc['id']}/health", headers=headers)).status == 401


def test_warnings():
    assert warnings(2.0, 2.0, [1e6] * 10) == []
    [w] = warnings(4.0, 2.0, [1e6] * 10)
    assert w.code == "keyframe_interval" and "4.0 s" in w.message and "2 s" in w.message
    [w] = warnings(1.0, 2.0, [1e6, 1e6, 1e6, 2e5, 1e6, 1.1e6, 1e6])
    assert w.code == "bitrate_unstable"
    assert warnings(None, 2.0, [1e6, 0, 1e6]) == []  # too few samples to say
    assert warnings(1.0, 2.0, [1e6, 1.1e6, 0.95e6, 1.05e6, 1e6, 1e6]) == []
    # the start of a publish (no bytes yet, then a partial second) is not instability
    assert warnings(1.0, 2.0, [0, 0, 3e5, 1e6, 1.1e6, 0.95e6, 1.05e6, 1e6]) == []


def test_comments_per_minute_counts_the_last_minute():
    now = 1_000_000.0
    history = [{"ts": (now - 90) * 1000}, {"ts": (now - 30) * 1000}, {"ts": (now - 1) * 1000}, {"ts": "x"}]
    assert comments_per_minute(history, now) == 2


async def test_with_redis_a_poster_uploaded_on_one_node_is_served_by_another(aiohttp_client, tmp_path, redis_url):
    def node(name: str):
        return create_app(NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path / name, redis_url=redis_url,
                                     admin_token="admin-secret-token"))

    first, second = await aiohttp_client(node("a")), await aiohttp_client(node("b"))
    doc = await create(first)
    resp = await first.put(f"/api/broadcasts/{doc['id']}/poster", data=image("png", 320, 180, "rgb24"), headers=ADMIN)
    assert resp.status == 200
    resp = await second.get(f"/posters/{doc['id']}.jpg")
    assert resp.status == 200 and (await resp.read())[:3] == b"\xff\xd8\xff"
    assert not (tmp_path / "a" / "posters").exists()  # in Redis, not on one node's disk


async def test_details_can_be_edited_by_admin_or_host_and_the_schedule_only_before_live(client, tmp_path):
    doc = await create(client, description="old")
    later = time.time() + 7200
    resp = await client.patch(f"/api/broadcasts/{doc['id']}", json={"scheduled_start": later, "title": " New "},
                              headers={"Authorization": "Bearer " + doc["host_token"]})
    assert resp.status == 200, await resp.text()
    edited = await resp.json()
    assert edited["title"] == "New" and edited["scheduled_start"] == pytest.approx(later)
    assert edited["description"] == "old" and "stream_key" not in edited  # the host sees no key
    resp = await client.patch(f"/api/broadcasts/{doc['id']}", json={"scheduled_start": None}, headers=ADMIN)
    assert (await resp.json())["scheduled_start"] is None
    for body, status, message in (({}, 400, "can be changed"), ({"visibility": "restricted"}, 400, "not 'visibility'"),
                                  ({"stream_key": "live_x"}, 400, "not 'stream_key'"), ({"title": ""}, 400, "'title'"),
                                  ({"scheduled_start": "soon"}, 400, "'scheduled_start'")):
        resp = await client.patch(f"/api/broadcasts/{doc['id']}", json=body, headers=ADMIN)
        assert resp.status == status and message in (await resp.json())["error"], body
    other = await create(client, title="Other")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + other["host_token"]}):
        resp = await client.patch(f"/api/broadcasts/{doc['id']}", json={"title": "x"}, headers=headers)
        assert resp.status == 401
    # after it ended, the schedule is history (the title can still be fixed)
    assert (await client.post(f"/api/broadcasts/{doc['id']}/end", headers=ADMIN)).status == 200
    resp = await client.patch(f"/api/broadcasts/{doc['id']}", json={"scheduled_start": later}, headers=ADMIN)
    assert resp.status == 409
    resp = await client.patch(f"/api/broadcasts/{doc['id']}", json={"title": "Final"}, headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["title"] == "Final"
