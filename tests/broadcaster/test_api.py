"""The broadcasts API, in process against a real SQLite store."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from broadcaster.app import create_app
from broadcaster.config import NodeConfig
from broadcaster.keys import STORE
from broadcaster.registry import Status, with_status

ADMIN = {"Authorization": "Bearer admin-secret-token"}


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path):
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token="admin-secret-token")
    return await aiohttp_client(create_app(config))


async def create(client, **body):
    resp = await client.post("/api/broadcasts", json={"title": "All hands", **body}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_create_returns_everything_a_broadcaster_needs(client):
    doc = await create(client, visibility="restricted")
    assert doc["status"] == "idle"
    assert doc["visibility"] == "restricted"
    assert doc["stream_key"].startswith(f"live_{doc['id']}_")
    assert doc["host_token"].startswith("host_")
    assert doc["rtmp_url"].startswith("rtmp://127.0.0.1:") and doc["rtmp_url"].endswith("/live")
    assert doc["hls_url"].endswith(f"/hls/{doc['id']}/master.m3u8")
    assert doc["watch_url"].endswith(f"/watch/{doc['id']}")
    assert doc["console_url"].endswith(f"/console/{doc['id']}")


async def test_public_url_makes_the_urls_node_independent(aiohttp_client, tmp_path: Path):
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token="admin-secret-token",
                        public_url="https://live.example.com/")
    client = await aiohttp_client(create_app(config))
    doc = await create(client, visibility="restricted")
    assert doc["hls_url"] == f"https://live.example.com/hls/{doc['id']}/master.m3u8"
    assert doc["watch_url"] == f"https://live.example.com/watch/{doc['id']}"
    assert doc["console_url"] == f"https://live.example.com/console/{doc['id']}"
    resp = await client.post(f"/api/broadcasts/{doc['id']}/viewer-tokens", json={"name": "v"}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    granted = await resp.json()
    assert granted["hls_url"].startswith(f"https://live.example.com/hls/{doc['id']}/master.m3u8?grant=")
    assert granted["watch_url"].startswith(f"https://live.example.com/watch/{doc['id']}#")


async def test_list_get_delete(client):
    a = await create(client)
    b = await create(client, title="Second")
    resp = await client.get("/api/broadcasts", headers=ADMIN)
    ids = [d["id"] for d in (await resp.json())["broadcasts"]]
    assert ids == [a["id"], b["id"]]
    resp = await client.get(f"/api/broadcasts/{a['id']}", headers=ADMIN)
    assert (await resp.json())["title"] == "All hands"
    resp = await client.delete(f"/api/broadcasts/{a['id']}", headers=ADMIN)
    assert resp.status == 204
    resp = await client.get(f"/api/broadcasts/{a['id']}", headers=ADMIN)
    assert resp.status == 404
    assert (await resp.json()) == {"error": f"no broadcast {a['id']!r}"}


async def test_host_token_reads_its_own_broadcast_without_secrets(client):
    a = await create(client)
    b = await create(client)
    resp = await client.get(f"/api/broadcasts/{a['id']}", headers={"Authorization": f"Bearer {a['host_token']}"})
    assert resp.status == 200
    doc = await resp.json()
    assert "stream_key" not in doc and "host_token" not in doc
    resp = await client.get(f"/api/broadcasts/{b['id']}", headers={"Authorization": f"Bearer {a['host_token']}"})
    assert resp.status == 401


async def test_rotate_key_invalidates_the_old_one(client):
    a = await create(client)
    resp = await client.post(f"/api/broadcasts/{a['id']}/rotate-key", headers=ADMIN)
    assert resp.status == 200
    rotated = await resp.json()
    assert rotated["stream_key"] != a["stream_key"]
    assert rotated["stream_key"].startswith(f"live_{a['id']}_")


@pytest.mark.parametrize("headers, status, message", [
    ({}, 401, "missing bearer token"),
    ({"Authorization": "Bearer nope"}, 401, "invalid admin token"),
    ({"Authorization": "Basic abc"}, 401, "missing bearer token"),
])
async def test_admin_calls_need_the_admin_token(client, headers, status, message):
    resp = await client.post("/api/broadcasts", json={"title": "x"}, headers=headers)
    assert resp.status == status
    assert (await resp.json()) == {"error": message}


@pytest.mark.parametrize("body, message", [
    (b"{not json", "invalid JSON"),
    (b"[1, 2]", "the request body must be a JSON object"),
    (b'{"title": ""}', "'title' is required and must be a non-empty string"),
    (b'{"title": 5}', "'title' is required and must be a non-empty string"),
    (b'{"title": "x", "visibility": "secret"}', "'visibility' must be 'public' or 'restricted'"),
])
async def test_bad_bodies_get_400_with_a_reason(client, body, message):
    resp = await client.post("/api/broadcasts", data=body, headers={**ADMIN, "Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"].startswith(message)


async def test_unknown_routes_and_ids_are_json_404(client):
    for path in ("/api/broadcasts/doesnotexist", "/api/nothing-here"):
        resp = await client.get(path, headers=ADMIN)
        assert resp.status == 404
        assert "error" in await resp.json()


async def test_end_of_an_idle_broadcast_closes_it_and_it_cannot_end_twice(client):
    a = await create(client)
    resp = await client.post(f"/api/broadcasts/{a['id']}/end", headers={"Authorization": f"Bearer {a['host_token']}"})
    assert resp.status == 200
    assert (await resp.json())["status"] == "ended"
    resp = await client.post(f"/api/broadcasts/{a['id']}/end", headers=ADMIN)
    assert resp.status == 409


async def test_metadata_survives_a_restart(aiohttp_client, tmp_path: Path):
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token="admin-secret-token")
    first = await aiohttp_client(create_app(config))
    doc = await create(first)
    await first.close()
    second = await aiohttp_client(create_app(config))
    resp = await second.get(f"/api/broadcasts/{doc['id']}", headers=ADMIN)
    assert resp.status == 200
    assert (await resp.json())["stream_key"] == doc["stream_key"]


async def test_public_view_has_no_secrets(client):
    a = await create(client)
    resp = await client.get(f"/api/public/broadcasts/{a['id']}")
    doc = await resp.json()
    assert doc["title"] == "All hands" and "stream_key" not in doc and "host_token" not in doc


async def test_healthz_and_metrics(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    resp = await client.get("/metrics")
    text = await resp.text()
    assert "onair_live_broadcasts" in text and "onair_publish_refused" in text


async def test_the_host_token_is_shown_when_created_or_rotated_and_stored_only_as_a_hash(client, tmp_path: Path):
    a = await create(client)
    token = a["host_token"]
    for path in ("/api/broadcasts", f"/api/broadcasts/{a['id']}"):
        resp = await client.get(path, headers=ADMIN)
        assert token not in await resp.text() and "host_token" not in await resp.text()
    assert token.encode() not in (tmp_path / "onair.db").read_bytes()
    resp = await client.post(f"/api/broadcasts/{a['id']}/rotate-host-token", headers=ADMIN)
    rotated = (await resp.json())["host_token"]
    assert rotated.startswith("host_") and rotated != token
    for bearer, status in ((token, 401), (rotated, 200)):
        resp = await client.get(f"/api/broadcasts/{a['id']}", headers={"Authorization": f"Bearer {bearer}"})
        assert resp.status == status


async def test_force_end_works_whatever_the_state(client):
    idle = await create(client)
    resp = await client.post(f"/api/broadcasts/{idle['id']}/end?force=true",
                             headers={"Authorization": f"Bearer {idle['host_token']}"})
    assert resp.status == 403 and (await resp.json()) == {"error": "force=true needs the admin token"}
    resp = await client.post(f"/api/broadcasts/{idle['id']}/end?force=true", headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["status"] == "ended"
    resp = await client.post(f"/api/broadcasts/{idle['id']}/end?force=true", headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["status"] == "ended"  # already ended: stays ended

    # the registry says live on a node that no longer exists (no session here)
    stranded = await create(client)
    store = client.app[STORE]
    doc = await store.get(stranded["id"])
    await store.put(replace(with_status(doc, Status.LIVE), origin="node-gone"))
    resp = await client.post(f"/api/broadcasts/{stranded['id']}/end", headers=ADMIN)
    assert resp.status == 409
    assert (await resp.json())["error"] == (f"broadcast {stranded['id']} is live on node node-gone; end it there, "
                                            "or with ?force=true (admin) here")
    resp = await client.post(f"/api/broadcasts/{stranded['id']}/end?force=true", headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["status"] == "ended"
    resp = await client.delete(f"/api/broadcasts/{stranded['id']}", headers=ADMIN)
    assert resp.status == 204


async def test_a_restarted_node_resumes_broadcasts_it_had_live_then_ends_them_after_the_grace(aiohttp_client,
                                                                                               tmp_path: Path):
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token="admin-secret-token",
                        reconnect_grace=0.5)
    first = await aiohttp_client(create_app(config))
    doc = await create(first)
    # the node died while it was live (under an older, random node id): no end was recorded
    stored = await first.app[STORE].get(doc["id"])
    await first.app[STORE].put(replace(with_status(stored, Status.LIVE), origin="node-random"))
    await first.app[STORE].close()
    second = await aiohttp_client(create_app(config))
    resp = await second.get(f"/api/broadcasts/{doc['id']}", headers=ADMIN)
    assert (await resp.json())["status"] == "reconnecting"
    for _ in range(100):
        await asyncio.sleep(0.05)
        resp = await second.get(f"/api/broadcasts/{doc['id']}", headers=ADMIN)
        if (await resp.json())["status"] == "ended":
            break
    else:
        raise AssertionError("the resumed broadcast did not end after its grace")
