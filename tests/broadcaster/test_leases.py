"""Leases on live broadcasts in a real Redis, and the orphan sweeper that ends a dead node's broadcasts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from broadcaster.leases import LocalLeases, RedisLeases
from broadcaster.orphans import OrphanSweeper
from broadcaster.registry import Status, Visibility, make_broadcast, with_status
from broadcaster.registry_redis import RedisBroadcastStore


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_lease_is_held_by_one_node_until_it_expires_or_is_released(redis: Redis) -> None:
    a, b = RedisLeases(redis, "node-a", ttl=1.0), RedisLeases(redis, "node-b", ttl=1.0)
    assert (await a.acquire("x")).held
    assert (await a.acquire("x")).held  # renewing
    refused = await b.acquire("x")
    assert not refused.held and refused.previous == "node-a"
    assert await redis.pttl(a.key("x")) > 500
    await a.release("x")
    assert (await b.acquire("x")).held
    await b.release("x")
    await a.release("x")  # not a's any more: nothing happens
    assert await a.holders() == {}
    assert (await a.acquire("x")).held
    await asyncio.sleep(1.2)  # a stopped renewing (kill -9)
    assert await b.holders() == {"x": None}
    assert (await b.acquire("x")).held


async def test_an_orphan_is_counted_down_by_one_node_and_can_be_taken_over(redis: Redis) -> None:
    a, b, c = (RedisLeases(redis, f"node-{n}", ttl=1.0) for n in "abc")
    await a.acquire("x")
    assert not await b.claim_orphan("x", grace=5)  # a still holds it
    await redis.delete(a.key("x"))  # a's lease expired
    assert await b.claim_orphan("x", grace=5)
    assert not await c.claim_orphan("x", grace=5)  # b was first
    assert await c.holders() == {"x": "orphan:node-b"}
    taken = await c.acquire("x")  # the publisher came back on c
    assert taken.held and taken.reclaimed and taken.previous == "orphan:node-b"
    assert not await b.settle_orphan("x")  # not b's to end any more
    assert await b.holders() == {"x": "node-c"}


async def test_a_revoked_lease_cannot_be_taken_and_its_holder_finds_out(redis: Redis) -> None:
    a, b = RedisLeases(redis, "node-a", ttl=5.0), RedisLeases(redis, "node-b", ttl=5.0)
    await a.acquire("x")
    await b.revoke("x")
    renewal = await a.acquire("x")
    assert not renewal.held and renewal.previous == "ended:node-b"
    assert await a.holders() == {}  # no longer swept


async def test_a_single_node_holds_every_lease() -> None:
    leases = LocalLeases("solo")
    assert (await leases.acquire("x")).held
    await leases.release("x")
    await leases.revoke("x")


async def test_the_sweeper_moves_a_dead_nodes_broadcast_to_reconnecting_then_ended(redis: Redis) -> None:
    store = RedisBroadcastStore(redis)
    dead, alive = RedisLeases(redis, "node-dead", ttl=1.0), RedisLeases(redis, "node-alive", ttl=1.0)
    broadcasts = []
    for title in ("stays", "ends"):
        broadcast, _ = make_broadcast(title, Visibility.PUBLIC, origin="node-dead")
        broadcast = with_status(broadcast, Status.LIVE)
        await store.create(broadcast)
        await dead.acquire(broadcast.id)
        broadcasts.append(broadcast)
    stays, ends = broadcasts
    announced: list[tuple[str, Status]] = []
    sweeper = OrphanSweeper(store, alive, serves=lambda _id: False, grace=0.5,
                            announce=lambda b: announced.append((b.id, b.status)))
    await sweeper.sweep()
    assert sweeper.claimed == {}  # leases still valid
    await asyncio.sleep(1.1)  # node-dead stopped renewing
    await sweeper.sweep()
    assert set(sweeper.claimed) == {stays.id, ends.id}
    assert [(await store.get(b.id)).status for b in broadcasts] == [Status.RECONNECTING] * 2
    # the publisher of one comes back on another node before the grace runs out
    assert (await RedisLeases(redis, "node-other").acquire(stays.id)).reclaimed
    await asyncio.sleep(0.6)
    await sweeper.sweep()
    assert sweeper.claimed == {}
    assert (await store.get(ends.id)).status is Status.ENDED
    assert (await store.get(stays.id)).status is Status.RECONNECTING  # the other node's to set
    assert await alive.holders() == {stays.id: "node-other"}
    # what it set is announced (webhooks): both reconnecting, one ended
    assert sorted(announced) == sorted([(stays.id, Status.RECONNECTING), (ends.id, Status.RECONNECTING),
                                        (ends.id, Status.ENDED)])


async def test_a_broadcast_left_live_without_any_lease_is_adopted_and_ended(redis: Redis) -> None:
    # live in the registry under a node of a version without leases, which is gone
    store = RedisBroadcastStore(redis)
    stray, _ = make_broadcast("stray", Visibility.PUBLIC, origin="node-old")
    await store.create(with_status(stray, Status.LIVE))
    idle, _ = make_broadcast("idle", Visibility.PUBLIC)
    await store.create(idle)
    leases = RedisLeases(redis, "node-new", ttl=1.0)
    sweeper = OrphanSweeper(store, leases, serves=lambda _id: False, grace=0.0)
    await sweeper.adopt()
    assert await leases.holders() == {stray.id: None}
    await sweeper.sweep()
    assert (await store.get(stray.id)).status is Status.RECONNECTING
    await sweeper.sweep()
    assert (await store.get(stray.id)).status is Status.ENDED
    assert (await store.get(idle.id)).status is Status.IDLE
