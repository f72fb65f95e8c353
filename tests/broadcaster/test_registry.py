"""Both broadcast stores behave the same (SQLite for one node, Redis for a cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redis.asyncio import Redis

from broadcaster.registry import (Broadcast, SqliteBroadcastStore, Status, Visibility, broadcast_id_from_key,
                                  host_token_matches, make_broadcast, secret_matches, with_status)
from broadcaster.registry_redis import RedisBroadcastStore


@pytest.fixture(params=["sqlite", "redis"])
async def store(request, tmp_path: Path):
    if request.param == "sqlite":
        s = SqliteBroadcastStore(tmp_path / "onair.db")
        await s.open()
        yield s
        await s.close()
    else:
        url = request.getfixturevalue("redis_url")
        client = Redis.from_url(url)
        s = RedisBroadcastStore(client)
        await s.open()
        yield s
        await client.aclose()


async def test_create_get_list_put_delete(store):
    a, _ = make_broadcast("a", Visibility.PUBLIC)
    b, _ = make_broadcast("b", Visibility.RESTRICTED)
    await store.create(a)
    await store.create(b)
    assert await store.get(a.id) == a
    assert [x.id for x in await store.list()] == [a.id, b.id]
    live = with_status(a, Status.LIVE)
    await store.put(live)
    got = await store.get(a.id)
    assert got.status is Status.LIVE and got.started_at is not None
    assert await store.delete(a.id) is True
    assert await store.delete(a.id) is False
    assert await store.get(a.id) is None


def test_keys_carry_the_id_and_compare_in_constant_time():
    b, host_token = make_broadcast("t", Visibility.PUBLIC)
    assert broadcast_id_from_key(b.stream_key) == b.id
    assert broadcast_id_from_key("garbage") is None
    assert broadcast_id_from_key("live__x") is None
    assert secret_matches(b.stream_key, b.stream_key)
    assert not secret_matches(b.stream_key, b.stream_key[:-1])
    assert make_broadcast("t", Visibility.PUBLIC)[0].stream_key != b.stream_key
    # the host token is kept as its hash only
    assert host_token.startswith("host_") and host_token not in b.to_json()
    assert host_token_matches(b, host_token) and not host_token_matches(b, host_token[:-1] + ("y" if host_token.endswith("x") else "x"))


def test_a_host_token_stored_in_clear_by_an_older_version_is_read_as_its_hash():
    b, host_token = make_broadcast("t", Visibility.PUBLIC)
    doc = json.loads(b.to_json())
    doc["host_token"] = host_token
    del doc["host_token_hash"]
    assert Broadcast.from_json(json.dumps(doc)) == b


def test_status_times():
    b, _ = make_broadcast("t", Visibility.PUBLIC)
    live = with_status(b, Status.LIVE)
    again = with_status(with_status(live, Status.RECONNECTING), Status.LIVE)
    assert again.started_at == live.started_at
    assert with_status(again, Status.ENDED).ended_at is not None
