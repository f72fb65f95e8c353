"""Both target stores (SQLite in the data dir, real Redis) keep targets whole, per broadcast, in order."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from redis.asyncio import Redis

from broadcaster.simulcast.store import RedisTargetStore, SqliteTargetStore
from broadcaster.simulcast.targets import new_target


@pytest.fixture(params=["sqlite", "redis"])
async def store(request, tmp_path: Path):
    if request.param == "sqlite":
        s = SqliteTargetStore(tmp_path / "simulcast.db")
        await s.open()
        yield s
        await s.close()
        assert stat.S_IMODE(os.stat(tmp_path / "simulcast.db").st_mode) == 0o600
    else:
        url = request.getfixturevalue("redis_url")
        redis = Redis.from_url(url)
        s = RedisTargetStore(redis)
        await s.open()
        yield s
        await s.close()
        await redis.aclose()


async def test_put_list_update_delete(store):
    a = new_target("b1", "rtmp://h/live", "key-a", "A")
    b = new_target("b1", "rtmps://h/live", "key-b", "B")
    other = new_target("b2", "rtmp://h/live", "key-c", "C")
    for target in (a, b, other):
        await store.put(target)
    assert await store.list("b1") == [a, b]  # the key comes back whole: it is needed to publish
    await store.put(replace(a, enabled=False))
    assert [t.enabled for t in await store.list("b1")] == [False, True]
    assert await store.delete("b1", a.id) and not await store.delete("b1", a.id)
    assert await store.list("b1") == [b]
    await store.delete_all("b1")
    assert await store.list("b1") == [] and await store.list("b2") == [other]


def test_a_target_never_prints_its_key() -> None:
    target = new_target("b1", "rtmp://h/live", "super-secret-key", "A")
    assert "super-secret-key" not in repr(target) and "super-secret-key" not in str(target.public())
