"""A ban is kept once, in the chat's shared state, and a node from before hands its copies over once.

The chat checks that record on every join and post; the ban list, exports and the playback gate
read it back; the moderation store keeps none (embedded: no ``bans`` table; Redis: no ``bans:{b}``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from broadcaster.keys import CHAT_BUS
from broadcaster.moderation_api import MOD_STORE
from tests.broadcaster.moderation_support import MOD_REDIS_URL, ModNode, mod_kind, mod_node  # noqa: F401
from tests.broadcaster.test_moderation_api import mod_path, setup_broadcast


async def test_a_ban_is_one_record_in_the_chat_state(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node)
    assert (await mod_node.call("POST", mod_path(bid, "viewers/v_troll/ban"), host, {"reason": "abuse"}))[0] == 200
    assert (await mod_node.call("POST", mod_path(bid, "viewers/v_brief/timeout"), host, {"seconds": 60}))[0] == 200

    kept = await mod_node.app[CHAT_BUS].bans(bid)
    assert [(b.viewer_id, b.actor, b.reason, b.kind) for b in kept] == [
        ("v_troll", "host", "abuse", "ban"), ("v_brief", "host", None, "timeout")]
    status, doc = await mod_node.call("GET", mod_path(bid, "bans"), host)
    assert status == 200 and [(b["viewer_id"], b["reason"], b["address"]) for b in doc["bans"]] == [
        ("v_troll", "abuse", False), ("v_brief", None, False)]
    assert await mod_node.app[MOD_STORE].legacy_bans() == []  # the store holds no copy
    if mod_node.bus_kind == "memory":
        data = mod_node.tmp_path / "data"
        assert sorted(b["viewer_id"] for b in json.loads((data / "chat-bans.json").read_text())) == \
            ["v_brief", "v_troll"]
        tables = {row[0] for row in sqlite3.connect(data / "moderation.db").execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "bans" not in tables

    assert (await mod_node.call("DELETE", mod_path(bid, "viewers/v_troll/ban"), host))[1]["was_banned"] is True
    assert [b.viewer_id for b in await mod_node.app[CHAT_BUS].bans(bid)] == ["v_brief"]
    assert (await mod_node.call("DELETE", mod_path(bid, "viewers/v_troll/ban"), host))[1]["was_banned"] is False


def _legacy_rows(bid: str) -> list[dict[str, Any]]:
    now = time.time()
    return [{"broadcast_id": bid, "viewer_id": "v_old", "until": None, "actor": "host", "reason": "old abuse",
             "ts": now - 100, "address_key": "addrkey-1"},
            {"broadcast_id": bid, "viewer_id": "v_over", "until": now - 5, "actor": "host", "reason": None,
             "ts": now - 50, "address_key": None}]


async def test_bans_a_node_from_before_kept_move_into_the_chat_state_once(mod_kind: str, tmp_path: Path,
                                                                          aiohttp_client: Any) -> None:
    first = ModNode(mod_kind, tmp_path)
    await first.start(aiohttp_client)
    bid, host = await setup_broadcast(first)
    await first.client.close()

    rows = _legacy_rows(bid)
    if mod_kind == "memory":  # the old table of moderation.db
        db = sqlite3.connect(tmp_path / "data" / "moderation.db")
        db.execute("CREATE TABLE bans (broadcast_id TEXT, viewer_id TEXT, until REAL, actor TEXT, reason TEXT, "
                   "ts REAL, address_key TEXT, PRIMARY KEY (broadcast_id, viewer_id))")
        db.executemany("INSERT INTO bans VALUES (?, ?, ?, ?, ?, ?, ?)", [tuple(r.values()) for r in rows])
        db.commit()
        db.close()
    else:  # the old hash of the Redis store, and the chat's old-format key beside it
        import redis.asyncio as aioredis
        r = aioredis.Redis.from_url(MOD_REDIS_URL)
        await r.hset(f"{first.prefix}mod:bans:{{{bid}}}", mapping={row["viewer_id"]: json.dumps(row) for row in rows})
        await r.sadd(f"{first.prefix}mod:ban-broadcasts", bid)
        await r.set(f"{first.prefix}{{{bid}}}:ban:v_old", "ban addrkey-1")
        await r.aclose()

    second = ModNode(mod_kind, tmp_path)
    second.prefix = first.prefix
    await second.start(aiohttp_client)
    try:
        status, doc = await second.call("GET", mod_path(bid, "bans"), host)
        assert status == 200 and [(b["viewer_id"], b["reason"], b["address"]) for b in doc["bans"]] == [
            ("v_old", "old abuse", True)]
        bus = second.app[CHAT_BUS]
        assert await bus.is_banned(bid, "v_old") and not await bus.is_banned(bid, "v_over")
        assert (await bus.admit(bid, "someone-new", "addrkey-1")).address_banned  # the address ban came along
        assert await second.app[MOD_STORE].legacy_bans() == []  # moved once: nothing left behind
        if mod_kind == "memory":
            tables = {row[0] for row in sqlite3.connect(tmp_path / "data" / "moderation.db").execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            assert "bans" not in tables
    finally:
        await second.cleanup()


async def test_legacy_bans_stay_until_dropped(tmp_path: Path) -> None:
    """Reading a store-from-before's bans does not consume them: the node drops them only after
    writing them to the chat state, so a failed write loses none."""
    from moderation.store import open_store

    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / "moderation.db")
    db.execute("CREATE TABLE bans (broadcast_id TEXT, viewer_id TEXT, until REAL, actor TEXT, reason TEXT, ts REAL)")
    db.executemany("INSERT INTO bans VALUES (?, ?, ?, ?, ?, ?)",  # from before address bans: no address_key
                   [tuple(r.values())[:6] for r in _legacy_rows("b1")])
    db.commit()
    db.close()
    store = open_store("", data)
    await store.open()
    try:
        first = await store.legacy_bans()
        assert [(b.viewer_id, b.reason, b.address_key) for b in first] == [("v_old", "old abuse", None)]
        assert await store.legacy_bans() == first
        await store.drop_legacy_bans()
        assert await store.legacy_bans() == []
    finally:
        await store.close()
