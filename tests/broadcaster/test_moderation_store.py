"""The moderation store, the same tests on SQLite and on a real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from moderation.store import (ArchivedComment, AuditEntry, ModerationStore, ModeratorGrant, hash_token,
                              open_store)
from moderation.store_sqlite import SqliteModerationStore
from tests.broadcaster.chat_support import require_redis
from tests.broadcaster.moderation_support import MOD_REDIS_URL


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ModerationStore]:
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    if request.param == "redis":
        require_redis()
        s = open_store(MOD_REDIS_URL, retention=3600, prefix=prefix)
    else:
        s = open_store("", tmp_path, retention=3600)
    await s.open()
    yield s
    await s.close()
    if request.param == "redis":
        import redis.asyncio as aioredis
        r = aioredis.Redis.from_url(MOD_REDIS_URL)
        keys = [k async for k in r.scan_iter(match=prefix + "*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


async def test_settings_round_trip(store: ModerationStore) -> None:
    assert await store.get_settings("b1") is None
    await store.put_settings("b1", {"strictness": "high", "blocked_terms": ["x*"]})
    assert await store.get_settings("b1") == {"strictness": "high", "blocked_terms": ["x*"]}
    assert await store.get_settings("b2") is None


async def test_viewer_token_epochs_only_go_up_one_at_a_time(store: ModerationStore) -> None:
    assert await store.token_epoch("b1") == 0
    assert await store.raise_token_epoch("b1") == 1
    assert await store.raise_token_epoch("b1") == 2
    assert await store.token_epoch("b1") == 2
    assert await store.token_epoch("b2") == 0


async def test_grants_are_found_by_token_hash_only(store: ModerationStore) -> None:
    grant = ModeratorGrant("g_1", "b1", "ann", time.time(), "host")
    await store.add_grant(grant, hash_token("mod_secret"))
    assert await store.find_grant(hash_token("mod_secret")) == grant
    assert await store.find_grant(hash_token("mod_other")) is None
    assert await store.find_grant("mod_secret") is None
    assert await store.list_grants("b1") == [grant] and await store.list_grants("b2") == []
    assert await store.delete_grant("b2", "g_1") is False
    assert await store.delete_grant("b1", "g_1") is True
    assert await store.find_grant(hash_token("mod_secret")) is None


async def test_audit_ids_paging_and_scrub(store: ModerationStore) -> None:
    ids = []
    for i in range(5):
        entry = await store.append_audit(AuditEntry("b1", "auto", "auto_hold", viewer_id=f"v{i % 2}",
                                                    text=f"text {i}", reason="insult", filter="harassment",
                                                    detail={"score": 0.5}))
        ids.append(entry.id)
    await store.append_audit(AuditEntry("b2", "host", "ban", viewer_id="v0", text="other broadcast"))
    assert ids == sorted(ids) and len(set(ids)) == 5
    entries = await store.list_audit("b1")
    assert [e.text for e in entries] == [f"text {i}" for i in range(5)]
    assert entries[0].detail == {"score": 0.5} and entries[0].reason == "insult"
    assert [e.id for e in await store.list_audit("b1", after=ids[2])] == ids[3:]
    assert [e.id for e in await store.list_audit("b1", limit=2)] == ids[3:]  # the newest
    assert await store.scrub_audit_text("v0") == 4  # 3 on b1, 1 on b2
    after = await store.list_audit("b1")
    assert [e.text for e in after] == [None, "text 1", None, "text 3", None]
    assert [e.id for e in after] == ids and after[0].action == "auto_hold"
    assert (await store.list_audit("b2"))[0].text is None


async def test_archive_export_retention_and_erase(store: ModerationStore) -> None:
    now = time.time()
    await store.archive_comment(ArchivedComment("v1", "b1", now - 7200, "too old", "publish"))
    await store.archive_comment(ArchivedComment("v1", "b1", now, "hello", "publish"))
    await store.archive_comment(ArchivedComment("v1", "b2", now, "f***", "publish_censored", "****", "profanity",
                                                "profanity"))
    await store.archive_comment(ArchivedComment("v2", "b1", now, "other", "publish"))
    mine = await store.viewer_comments("v1")
    assert [(c.broadcast_id, c.text, c.shown_text) for c in mine] == [("b1", "hello", None), ("b2", "f***", "****")]
    assert await store.erase_viewer_comments("v1") >= 2
    assert await store.viewer_comments("v1") == []
    assert [c.text for c in await store.viewer_comments("v2")] == ["other"]


async def test_queued_archive_records_are_read_in_order_and_written_on_close(store: ModerationStore,
                                                                            tmp_path: Path) -> None:
    now = time.time()
    for i in range(30):
        await store.queue_archive(ArchivedComment("vq", "b1", now, f"queued {i}", "publish"))
    await store.archive_comment(ArchivedComment("vq", "b1", now, "held one", "hold", None, "harassment", "x"))
    await store.queue_archive(ArchivedComment("vq", "b2", now, "last", "publish"))
    # a read sees everything queued before it, in the order it was queued
    assert [c.text for c in await store.viewer_comments("vq")] == [f"queued {i}" for i in range(30)] + \
        ["held one", "last"]
    await store.queue_archive(ArchivedComment("vq", "b1", now, "erased too", "publish"))
    assert await store.erase_viewer_comments("vq") == 33
    if isinstance(store, SqliteModerationStore):
        await store.queue_archive(ArchivedComment("vc", "b1", now, "before close", "publish"))
        await store.close()
        again = open_store("", tmp_path, retention=3600)
        await again.open()
        assert [c.text for c in await again.viewer_comments("vc")] == ["before close"]
        await again.close()
        await store.open()  # the fixture closes it again


async def test_sqlite_store_persists_across_reopen(tmp_path: Path) -> None:
    s = open_store("", tmp_path)
    await s.open()
    await s.put_settings("b1", {"slow_mode_seconds": 5.0})
    await s.append_audit(AuditEntry("b1", "host", "ban", viewer_id="v1"))
    await s.close()
    s = open_store("", tmp_path)
    await s.open()
    assert await s.get_settings("b1") == {"slow_mode_seconds": 5.0}
    assert [e.action for e in await s.list_audit("b1")] == ["ban"]
    await s.close()


async def test_settings_cache_rereads_after_its_ttl_and_at_once_after_invalidate(tmp_path: Path) -> None:
    from moderation.screening import SettingsCache
    from moderation.settings import Strictness

    s = open_store("", tmp_path)
    await s.open()
    now = [100.0]
    cache = SettingsCache(s, ttl=1.0, clock=lambda: now[0])
    assert (await cache.get("b1")).strictness is Strictness.MEDIUM  # nothing stored: defaults
    await s.put_settings("b1", {"strictness": "high"})  # e.g. written by another node
    now[0] += 0.5
    assert (await cache.get("b1")).strictness is Strictness.MEDIUM  # within the TTL
    now[0] += 0.6
    assert (await cache.get("b1")).strictness is Strictness.HIGH
    assert cache.peek("b1").strictness is Strictness.HIGH
    await s.put_settings("b1", {"strictness": "off"})
    cache.invalidate("b1")  # written on this node
    assert (await cache.get("b1")).strictness is Strictness.OFF
    await s.put_settings("b2", {"strictness": "bogus"})  # unreadable: defaults, not a crash
    assert (await cache.get("b2")).strictness is Strictness.MEDIUM
    await s.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_bus_forget_comments_deletes_history_entries(kind: str) -> None:
    """The chat bus call erasure relies on: the entries leave the stored history."""
    from broadcaster.bus import open_bus

    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    if kind == "redis":
        require_redis()
    bus = open_bus(MOD_REDIS_URL if kind == "redis" else "", prefix=prefix)
    await bus.start()
    try:
        for i, author in enumerate(["a", "b", "a"]):
            body = ('{"type":"comment","id":"c_%d","author":{"id":"c_1","name":"%s"},"text":"t%d"}'
                    % (i, author, i)).encode()
            await bus.post_comment("b1", "{b1}", body)
        await bus.remove_comment("b1", "c_0")
        assert await bus.forget_comments("b1", ["c_0", "c_2", "c_missing"]) == 2
        assert [(c["id"], c["text"]) for c in await bus.history("b1")] == [("c_1", "t1")]  # author id c_1 untouched
        assert await bus.forget_comments("b1", []) == 0
        assert await bus.forget_comments("nobroadcast", ["c_1"]) == 0
    finally:
        await bus.close()
        if kind == "redis":
            import redis.asyncio as aioredis
            r = aioredis.Redis.from_url(MOD_REDIS_URL)
            keys = [k async for k in r.scan_iter(match=prefix + "*")]
            if keys:
                await r.delete(*keys)
            await r.aclose()
