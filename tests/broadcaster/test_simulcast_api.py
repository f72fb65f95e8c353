"""The simulcast targets API, in process against a real SQLite store: every gate from outside, every
hostile input answered with a clear 4xx, and the stream key never in an answer, a log line or a world-
readable file."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from broadcaster.app import create_app
from broadcaster.config import NodeConfig

ADMIN_TOKEN = "admin-secret-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KEY = "xq7-SECRET-stream-key-that-must-not-leak"
URL = "rtmp://127.0.0.1:1/live2"


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path):
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token=ADMIN_TOKEN)
    return await aiohttp_client(create_app(config))


async def _broadcast(client, visibility: str = "public") -> dict:
    resp = await client.post("/api/broadcasts", json={"title": "t", "visibility": visibility}, headers=ADMIN)
    assert resp.status == 201
    return await resp.json()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tampered(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


async def test_create_list_disable_delete_with_the_host_token(client, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    b = await _broadcast(client)
    host = _bearer(b["host_token"])
    resp = await client.post(f"/api/broadcasts/{b['id']}/simulcast", headers=host,
                             json={"url": URL, "stream_key": KEY, "name": "YouTube"})
    assert resp.status == 201
    doc = await resp.json()
    assert {k: doc[k] for k in ("name", "url", "status", "enabled")} == \
        {"name": "YouTube", "url": URL, "status": "idle", "enabled": True}
    assert doc["id"].startswith("t") and "stream_key" not in doc
    resp = await client.get(f"/api/broadcasts/{b['id']}/simulcast", headers=host)
    targets = (await resp.json())["targets"]
    assert [t["id"] for t in targets] == [doc["id"]]
    assert {"status", "bytes_sent", "bitrate", "last_error"} <= set(targets[0])
    resp = await client.patch(f"/api/broadcasts/{b['id']}/simulcast/{doc['id']}", headers=host,
                              json={"enabled": False})
    assert resp.status == 200 and (await resp.json())["enabled"] is False
    resp = await client.get(f"/api/broadcasts/{b['id']}", headers=ADMIN)
    assert [t["enabled"] for t in (await resp.json())["simulcast"]] == [False]
    resp = await client.delete(f"/api/broadcasts/{b['id']}/simulcast/{doc['id']}", headers=host)
    assert resp.status == 204
    resp = await client.delete(f"/api/broadcasts/{b['id']}/simulcast/{doc['id']}", headers=host)
    assert resp.status == 404
    assert KEY not in caplog.text and KEY[:8] not in caplog.text
    db = tmp_path / "simulcast.db"
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/simulcast", {"url": URL, "stream_key": KEY}),
    ("GET", "/simulcast", None),
    ("PATCH", "/simulcast/tdeadbeef0000", {"enabled": False}),
    ("DELETE", "/simulcast/tdeadbeef0000", None),
])
async def test_every_route_refuses_no_token_a_wrong_one_a_tampered_one_and_another_broadcasts(
        client, method, path, body):
    b = await _broadcast(client)
    other = await _broadcast(client)
    for headers in ({}, _bearer("wrong"), _bearer(_tampered(b["host_token"])), _bearer(_tampered(ADMIN_TOKEN)),
                    _bearer(other["host_token"]), {"Authorization": b["host_token"]}):
        resp = await client.request(method, f"/api/broadcasts/{b['id']}{path}", headers=headers, json=body)
        assert resp.status == 401, (headers, resp.status)
        assert "error" in await resp.json()
    resp = await client.get(f"/api/broadcasts/{b['id']}/simulcast", headers=ADMIN)
    assert (await resp.json())["targets"] == []  # nothing was created


async def test_a_restricted_broadcast_answers_a_wrong_token_like_an_unknown_id(client):
    b = await _broadcast(client, "restricted")
    resp = await client.get(f"/api/broadcasts/{b['id']}/simulcast", headers=_bearer("wrong"))
    assert resp.status == 404
    resp = await client.get("/api/broadcasts/nosuchid/simulcast", headers=_bearer("wrong"))
    assert resp.status == 404
    resp = await client.get(f"/api/broadcasts/{b['id']}/simulcast", headers=_bearer(b["host_token"]))
    assert resp.status == 200


@pytest.mark.parametrize("body,message", [
    ({"url": "http://h/live", "stream_key": KEY}, "'url' must start with rtmp:// or rtmps://"),
    ({"url": "rtmp://user:pw@h/live", "stream_key": KEY}, "'url' must not carry credentials"),
    ({"url": "rtmp://h/live?key=" + KEY, "stream_key": KEY}, "'url' must not have a query or fragment"),
    ({"url": "rtmp://h/", "stream_key": KEY}, "'url' has no application path"),
    ({"url": "rtmp:///live", "stream_key": KEY}, "'url' has no host"),
    ({"url": "rtmp://h:99999/live", "stream_key": KEY}, "'url' has an invalid port"),
    ({"url": "rtmp://h/li ve", "stream_key": KEY}, "'url' contains spaces or control characters"),
    ({"url": "rtmp://h/" + "a" * 1100, "stream_key": KEY}, "'url' is longer than 1024 characters"),
    ({"url": 5, "stream_key": KEY}, "'url' is required"),
    ({"stream_key": KEY}, "'url' is required"),
    ({"url": URL}, "'stream_key' is required"),
    ({"url": URL, "stream_key": ""}, "'stream_key' is required"),
    ({"url": URL, "stream_key": 12}, "'stream_key' is required"),
    ({"url": URL, "stream_key": KEY + "\n"}, "'stream_key' contains control characters"),
    ({"url": URL, "stream_key": "k" * 1025}, "'stream_key' is longer than 1024 characters"),
    ({"url": URL, "stream_key": KEY, "name": ""}, "'name' must be a non-empty string"),
    ({"url": URL, "stream_key": KEY, "name": "n" * 101}, "'name' is longer than 100 characters"),
    ({"url": URL, "stream_key": KEY, "enabled": "yes"}, "'enabled' must be true or false"),
    ({"url": URL, "stream_key": KEY, "key": KEY}, "unknown field(s): 'key'"),
])
async def test_hostile_targets_get_a_clear_400_without_the_key(client, body, message):
    b = await _broadcast(client)
    resp = await client.post(f"/api/broadcasts/{b['id']}/simulcast", headers=ADMIN, json=body)
    assert resp.status == 400
    text = await resp.text()
    assert json.loads(text)["error"].startswith(message), text
    assert KEY not in text
    resp = await client.get(f"/api/broadcasts/{b['id']}/simulcast", headers=ADMIN)
    assert (await resp.json())["targets"] == []


async def test_bodies_that_are_not_a_json_object_or_too_large(client):
    b = await _broadcast(client)
    path = f"/api/broadcasts/{b['id']}/simulcast"
    for raw, status in ((b"{not json", 400), (b"[1, 2]", 400), (b'{"url": NaN}', 400),
                        (b'{"url": "' + b"a" * 9000 + b'"}', 413)):
        resp = await client.post(path, headers={**ADMIN, "Content-Type": "application/json"}, data=raw)
        assert resp.status == status, (raw[:20], resp.status)
        assert "error" in await resp.json()


async def test_limits_and_patch_inputs(client):
    b = await _broadcast(client)
    path = f"/api/broadcasts/{b['id']}/simulcast"
    ids = []
    for i in range(10):
        resp = await client.post(path, headers=ADMIN, json={"url": URL, "stream_key": f"k{i}"})
        assert resp.status == 201
        ids.append((await resp.json())["id"])
    resp = await client.post(path, headers=ADMIN, json={"url": URL, "stream_key": "k11"})
    assert resp.status == 409 and "10 simulcast targets" in (await resp.json())["error"]
    for body, message in (({"enabled": 1}, "'enabled' must be true or false"),
                          ({"url": "rtmp://other/live"}, "only 'enabled' and 'name' can be changed"),
                          ({"stream_key": "x"}, "only 'enabled' and 'name' can be changed"),
                          ({"name": 3}, "'name' must be a non-empty string")):
        resp = await client.patch(f"{path}/{ids[0]}", headers=ADMIN, json=body)
        assert resp.status == 400 and (await resp.json())["error"].startswith(message)
    resp = await client.patch(f"{path}/nosuch", headers=ADMIN, json={"enabled": False})
    assert resp.status == 404
    resp = await client.get(path, headers=ADMIN)
    assert (await resp.json())["targets"][0]["name"] == "127.0.0.1"  # the host when no name was given


async def test_deleting_the_broadcast_deletes_its_targets_and_their_keys(client, tmp_path):
    b = await _broadcast(client)
    resp = await client.post(f"/api/broadcasts/{b['id']}/simulcast", headers=ADMIN, json={"url": URL, "stream_key": KEY})
    assert resp.status == 201
    resp = await client.delete(f"/api/broadcasts/{b['id']}", headers=ADMIN)
    assert resp.status == 204
    import sqlite3

    with sqlite3.connect(tmp_path / "simulcast.db") as db:
        assert db.execute("SELECT COUNT(*) FROM targets").fetchone() == (0,)
