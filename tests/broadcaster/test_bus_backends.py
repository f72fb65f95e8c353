"""The bus contract, run against the in-process backend and a real Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broadcaster.bus import (GAP, Admission, Banned, Bus, BusUnavailable, Held, MemoryBus, PresenceCount, PresenceUpdate,
                             RedisBus, open_bus)
from tests.support.bans import ban
from tests.broadcaster.chat_support import REDIS_URL, RedisServer, private_redis, require_redis  # noqa: F401


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    if request.param == "redis":
        require_redis()
        prefix = f"test:{uuid.uuid4().hex[:10]}:"
        b: Bus = RedisBus(REDIS_URL, prefix=prefix, history_size=5, retention=60)
    else:
        b = MemoryBus(history_size=5, secret_path=tmp_path / "secret")
    await b.start()
    yield b
    if isinstance(b, RedisBus):
        keys = [k async for k in b._redis.scan_iter(match=b.prefix + "*")]
        if keys:
            await b._redis.delete(*keys)
    await b.close()


def comment(cid: str, text: str = "t") -> bytes:
    return json.dumps({"type": "comment", "id": cid, "text": text}).encode()


async def test_publish_reaches_every_subscriber_of_the_channel(bus: Bus) -> None:
    async with bus.subscribe("{a}") as s1, bus.subscribe("{a}") as s2, bus.subscribe("{b}") as other:
        await bus.publish("{a}", b"one")
        await bus.publish("{a}", b"two")
        for sub in (s1, s2):
            assert [await asyncio.wait_for(sub.get(), 2) for _ in range(2)] == [b"one", b"two"]
        await bus.publish("{b}", b"three")
        assert await asyncio.wait_for(other.get(), 2) == b"three"
        assert s1.get_nowait() is None


async def test_subscription_queue_is_bounded_and_counts_drops(bus: Bus) -> None:
    async with bus.subscribe("{q}", maxsize=3) as sub:
        for i in range(10):
            await bus.publish("{q}", str(i).encode())
        await asyncio.sleep(0.3)  # let the Redis reader deliver
        got = [sub.get_nowait() for _ in range(3)]
        assert got == [b"7", b"8", b"9"] and sub.get_nowait() is None
        assert sub.dropped == 7


async def test_post_comment_orders_stores_and_publishes(bus: Bus) -> None:
    async with bus.subscribe("{c}") as sub:
        seqs = [await bus.post_comment("c", "{c}", comment(f"id{i}")) for i in range(7)]
        assert seqs == sorted(seqs) and len(set(seqs)) == 7 and seqs[-1] - seqs[0] == 6
        published = [json.loads(await asyncio.wait_for(sub.get(), 2)) for _ in range(7)]
    assert [p["seq"] for p in published] == seqs
    assert published[0] == {"seq": seqs[0], "type": "comment", "id": "id0", "text": "t"}
    assert await bus.last_seq("c") == seqs[-1]
    history = await bus.history("c")
    assert [h["id"] for h in history] == [f"id{i}" for i in range(2, 7)]  # bounded to 5
    assert await bus.remove_comment("c", "id4")
    history = await bus.history("c")
    assert [h.get("removed", False) for h in history] == [False, False, True, False, False]


async def test_post_comment_refuses_a_banned_author_in_the_same_step(bus: Bus) -> None:
    await bus.ban(ban("p", "troll"))
    async with bus.subscribe("{p}") as sub:
        with pytest.raises(Banned):
            await bus.post_comment("p", "{p}", comment("bad"), author_id="troll")
        seq = await bus.post_comment("p", "{p}", comment("good"), author_id="someone")
        assert json.loads(await asyncio.wait_for(sub.get(), 2))["id"] == "good"  # the refused one was not published
        assert sub.get_nowait() is None
    assert [h["id"] for h in await bus.history("p")] == ["good"]
    assert await bus.last_seq("p") == seq
    await bus.unban("p", "troll")
    assert await bus.post_comment("p", "{p}", comment("after"), author_id="troll") == seq + 1


async def test_reaction_totals_are_atomic_with_their_message(bus: Bus) -> None:
    async with bus.subscribe("{r}") as sub:
        await asyncio.gather(*(bus.add_reactions("r", "{r}", {"like": 3, "love": 1}, f"n{i}") for i in range(10)))
        msgs = [json.loads(await asyncio.wait_for(sub.get(), 2)) for _ in range(10)]
    likes = [m["totals"]["like"] for m in msgs]
    assert likes == sorted(likes) and likes[-1] == 30  # publish order = increment order
    assert all(m["type"] == "reactions" and m["counts"] == {"like": 3, "love": 1} for m in msgs)
    assert await bus.reaction_totals("r") == {"like": 30, "love": 10}


async def test_bans_held_pinned(bus: Bus) -> None:
    assert not await bus.is_banned("m", "v1")
    await bus.ban(ban("m", "v1"))
    await bus.ban(ban("m", "v2", seconds=1))
    assert await bus.is_banned("m", "v1") and await bus.is_banned("m", "v2")
    await asyncio.sleep(2.1)
    assert await bus.is_banned("m", "v1") and not await bus.is_banned("m", "v2")
    await bus.unban("m", "v1")
    assert not await bus.is_banned("m", "v1")

    await bus.hold("m", Held("h1", {"id": "c1", "text": "held"}))
    assert [h.id for h in await bus.list_held("m")] == ["h1"]
    taken = await asyncio.gather(bus.take_held("m", "h1"), bus.take_held("m", "h1"))
    assert sorted(t is None for t in taken) == [False, True]  # exactly once
    assert await bus.list_held("m") == []

    assert await bus.pinned("m") is None
    await bus.set_pinned("m", {"id": "c1", "text": "pin"})
    assert await bus.pinned("m") == {"id": "c1", "text": "pin"}
    await bus.set_pinned("m", None)
    assert await bus.pinned("m") is None


async def test_presence_counts_distinct_identities_across_nodes_and_expires(bus: Bus) -> None:
    # node a: identities 1, 2, 3 on x; node b: 3 (again) and 4 on x, 9 on y
    got = await bus.sync_presence("node-a", [PresenceUpdate("x", ("i1", "i2", "i3"), full=True)], ttl=1)
    assert got == {"x": PresenceCount(3)}
    got = await bus.sync_presence("node-b", [PresenceUpdate("x", ("i3", "i4"), full=True),
                                             PresenceUpdate("y", ("i9",), full=True)], ttl=10)
    assert got == {"x": PresenceCount(4), "y": PresenceCount(1)}  # i3 on both nodes counts once
    # changes, not the whole set: i1 leaves a, i5 joins it
    got = await bus.sync_presence("node-a", [PresenceUpdate("x", ("i5",), ("i1",), expected=True)], ttl=1)
    assert got == {"x": PresenceCount(4)}  # i2 i3 i4 i5
    await asyncio.sleep(1.2)  # node a stops reporting: its identities drop out
    got = await bus.sync_presence("node-b", [PresenceUpdate("x", expected=True)], ttl=10)
    assert got == {"x": PresenceCount(2)}
    # node a comes back with changes only: its set is gone, so it is told to report it whole
    got = await bus.sync_presence("node-a", [PresenceUpdate("x", ("i6",), expected=True)], ttl=10)
    assert got["x"].lost


async def test_address_ban_holds_for_every_identity_from_the_address(bus: Bus) -> None:
    assert await bus.admit("m", "anon1", "addr-1") == Admission()
    assert await bus.address_of("m", "anon1") == "addr-1"
    assert await bus.address_of("m", "never") is None
    await bus.ban(ban("m", "anon1", address="addr-1"))
    assert await bus.admit("m", "anon1", "addr-1") == Admission("ban", True)
    assert await bus.admit("m", "anon2", "addr-1") == Admission(None, True)  # a new identity, same address
    assert await bus.admit("m", "anon3", "addr-2") == Admission()
    with pytest.raises(Banned):
        await bus.post_comment("m", "{m}", comment("x"), author_id="anon2", address="addr-1")
    await bus.post_comment("m", "{m}", comment("y"), author_id="anon3", address="addr-2")
    await bus.ban(ban("m", "anon4", seconds=60))
    assert await bus.admit("m", "anon4", "addr-3") == Admission("timeout", False)
    # unbanning the viewer lifts the address ban it came with
    await bus.unban("m", "anon1")
    assert await bus.admit("m", "anon2", "addr-1") == Admission()
    await bus.post_comment("m", "{m}", comment("z"), author_id="anon2", address="addr-1")
    # a new ban without the address replaces the old one, address ban and all
    await bus.ban(ban("m", "anon1", address="addr-1"))
    await bus.ban(ban("m", "anon1"))
    assert await bus.admit("m", "anon2", "addr-1") == Admission()


async def test_a_ban_is_one_record_listed_with_who_why_and_until(bus: Bus) -> None:
    """The bus keeps the whole record (the moderation store keeps none): the ban list, the exports and
    the playback gate read it back from here."""
    await bus.ban(ban("l", "v1", reason="abuse", address="addr-9"))
    await bus.ban(ban("l", "v2", seconds=60, actor="moderator:ann"))
    await bus.ban(ban("l", "v3", seconds=1))
    await bus.ban(ban("other", "v1", actor="admin"))
    listed = await bus.bans("l")
    assert [(b.viewer_id, b.actor, b.reason, b.kind, b.address_key) for b in listed] == [
        ("v1", "host", "abuse", "ban", "addr-9"), ("v2", "moderator:ann", None, "timeout", None),
        ("v3", "host", None, "timeout", None)]
    assert listed[1].until is not None and 58 < listed[1].until - listed[1].ts <= 60
    await asyncio.sleep(2.1)  # the one-second timeout ends: no longer listed
    assert [b.viewer_id for b in await bus.bans("l")] == ["v1", "v2"]
    assert {(b.broadcast_id, b.viewer_id) for b in await bus.bans()} == {("l", "v1"), ("l", "v2"), ("other", "v1")}
    assert await bus.unban("l", "v1") is True
    assert await bus.unban("l", "v1") is False
    assert [b.viewer_id for b in await bus.bans("l")] == ["v2"]
    assert await bus.admit("l", "someone", "addr-9") == Admission()  # the address ban went with it


async def test_embedded_bans_hold_across_a_restart_and_a_damaged_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "chat-bans.json"
    first = MemoryBus(bans_path=path)
    await first.start()
    await first.ban(ban("b", "troll", reason="spam", address="addr-1"))
    await first.ban(ban("b", "brief", seconds=1))
    assert path.stat().st_mode & 0o777 == 0o600
    await asyncio.sleep(1.1)
    again = MemoryBus(bans_path=path)
    await again.start()
    assert [(b.viewer_id, b.reason, b.address_key) for b in await again.bans("b")] == [("troll", "spam", "addr-1")]
    assert await again.admit("b", "new-identity", "addr-1") == Admission(None, True)
    path.write_text("{not json")
    damaged = MemoryBus(bans_path=path)
    await damaged.start()  # starts, without them
    assert await damaged.bans() == []
    assert any(p.name.startswith("chat-bans.json.damaged") for p in tmp_path.iterdir())  # kept aside


async def test_redis_ban_keys_from_before_the_record_are_still_honoured() -> None:
    """A ban key a node from before wrote ("kind[ address]") still refuses the viewer, and unban lifts it
    with its address ban; the node's start moves the moderation store's old records in
    (tests/broadcaster/test_moderation_bans_once.py)."""
    require_redis()
    redis_bus = RedisBus(REDIS_URL, prefix=f"test:{uuid.uuid4().hex[:10]}:", retention=60)
    await redis_bus.start()
    r = redis_bus._redis
    await r.set(redis_bus._key("o", "ban:old"), "ban addr-7")
    await r.set(redis_bus._key("o", "banaddr:addr-7"), "old")
    await r.set(redis_bus._key("o", "ban:brief"), "timeout", ex=60)
    assert await redis_bus.admit("o", "old", "addr-x") == Admission("ban", False)
    assert await redis_bus.admit("o", "other", "addr-7") == Admission(None, True)
    assert await redis_bus.admit("o", "brief", "addr-y") == Admission("timeout", False)
    assert await redis_bus.unban("o", "old") is True
    assert await redis_bus.admit("o", "other", "addr-7") == Admission()
    await r.delete(*[k async for k in r.scan_iter(match=redis_bus.prefix + "*")])
    await redis_bus.close()


async def test_cluster_secret_first_writer_wins(bus: Bus) -> None:
    first = await bus.cluster_secret(b"\x01" * 32)
    assert first == b"\x01" * 32
    assert await bus.cluster_secret(b"\x02" * 32) == first


def test_open_bus_picks_backend_from_url() -> None:
    assert isinstance(open_bus(""), MemoryBus)
    assert isinstance(open_bus("redis://127.0.0.1:6379/0"), RedisBus)
    with pytest.raises(ValueError, match="unsupported bus URL scheme: 'kafka'"):
        open_bus("kafka://x")


async def test_redis_bus_reconnects_and_resubscribes(private_redis: RedisServer) -> None:
    bus = RedisBus(private_redis.url, prefix="t:")
    await bus.start()
    try:
        assert bus.sharded  # Redis 7 here: SSUBSCRIBE/SPUBLISH
        async with bus.subscribe("{x}") as sub:
            await bus.publish("{x}", b"before")
            assert await asyncio.wait_for(sub.get(), 2) == b"before"
            private_redis.kill()
            with pytest.raises(BusUnavailable):
                await bus.publish("{x}", b"lost")
            private_redis.start()
            # The reader resubscribes by itself; publishes succeed again and arrive.
            got: list[bytes] = []
            for _ in range(100):
                try:
                    await bus.publish("{x}", b"after")
                except BusUnavailable:
                    await asyncio.sleep(0.1)
                    continue
                try:
                    while True:
                        got.append(await asyncio.wait_for(sub.get(), 0.2))
                        if b"after" in got:
                            break
                except asyncio.TimeoutError:
                    continue
                break
            assert GAP in got and b"after" in got
            assert got.index(GAP) < got.index(b"after")
            assert bus.reconnects >= 1
    finally:
        await bus.close()


async def test_memory_bus_keeps_held_comments_across_restarts(tmp_path: Path) -> None:
    first = MemoryBus(held_path=tmp_path / "held.json")
    await first.start()
    await first.hold("b", Held("h1", {"id": "c1", "text": "wait"}))
    await first.hold("b", Held("h2", {"id": "c2", "text": "and me"}))
    await first.take_held("b", "h2")
    await first.close()
    second = MemoryBus(held_path=tmp_path / "held.json")
    await second.start()
    assert await second.list_held("b") == [Held("h1", {"id": "c1", "text": "wait"})]
    assert await second.take_held("b", "h1") is not None


@pytest.mark.parametrize("damage", [b'{"b": {"h1": {"id": "c1"', b"\xff\xfe", b'["not", "a", "map"]'])
async def test_a_damaged_held_file_is_moved_aside_and_the_bus_starts(tmp_path: Path, damage: bytes,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "held.json"
    path.write_bytes(damage)
    bus = MemoryBus(held_path=path)
    await bus.start()  # never a failed start
    assert await bus.list_held("b") == []
    assert "held comments" in caplog.text
    if damage.startswith(b"["):
        assert path.read_bytes() == damage  # readable JSON of the wrong shape: ignored, kept
    else:
        assert not path.exists() and [p.read_bytes() for p in tmp_path.glob("held.json.damaged-*")] == [damage]
    await bus.hold("b", Held("h1", {"id": "c1", "text": "wait"}))
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_bytes()) == {"b": {"h1": {"id": "c1", "text": "wait"}}}
