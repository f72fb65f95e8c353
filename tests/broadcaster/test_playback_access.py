"""Each node's cached playback access state: one load for many requests, reloads, notices, failures."""

from __future__ import annotations

import asyncio

import pytest

from broadcaster.bus import MemoryBus
from broadcaster.playback.access import PlaybackAccess, Revocations, Unavailable, announce
from broadcaster.registry import Broadcast, Visibility


class Store:
    """The registry and the moderation store as the access cache reads them, counting reads."""

    def __init__(self) -> None:
        self.visibility: dict[str, Visibility] = {"pub": Visibility.PUBLIC, "res": Visibility.RESTRICTED}
        self.epoch = 0
        self.banned: set[str] = set()
        self.reads = 0
        self.down = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def broadcast(self, broadcast_id: str) -> Broadcast | None:
        self.reads += 1
        await self.gate.wait()
        if self.down:
            raise ConnectionError("store is down")
        visibility = self.visibility.get(broadcast_id)
        if visibility is None:
            return None
        return Broadcast(broadcast_id, "t", visibility, "live_x_y", "host_z")

    async def revocations(self, broadcast_id: str) -> Revocations:
        if self.down:
            raise ConnectionError("store is down")
        return Revocations(self.epoch, frozenset(self.banned))


@pytest.fixture
def store() -> Store:
    return Store()


async def test_public_restricted_and_unknown(store: Store):
    access = PlaybackAccess(store.broadcast, store.revocations)
    assert not (await access.state("pub")).gated
    store.epoch, store.banned = 3, {"v1"}
    state = await access.state("res")
    assert state.gated and state.epoch == 3 and state.banned == {"v1"}
    # an id the registry does not know is gated like a restricted broadcast
    assert (await access.state("nobody")).gated
    await access.close()


async def test_concurrent_requests_share_one_load_and_the_state_is_cached(store: Store):
    access = PlaybackAccess(store.broadcast, store.revocations, ttl=60)
    store.gate.clear()
    waiting = [asyncio.ensure_future(access.state("res")) for _ in range(50)]
    await asyncio.sleep(0.01)
    store.gate.set()
    states = await asyncio.gather(*waiting)
    assert store.reads == 1 and all(s is states[0] for s in states)
    await access.state("res")
    assert store.reads == 1
    await access.close()


async def test_reloaded_after_the_ttl(store: Store):
    access = PlaybackAccess(store.broadcast, store.revocations, ttl=0.05)
    assert (await access.state("res")).banned == frozenset()
    store.banned = {"v9"}
    await asyncio.sleep(0.06)
    assert (await access.state("res")).banned == {"v9"}
    await access.close()


async def test_a_notice_on_the_bus_reloads_at_once(store: Store):
    bus = MemoryBus()
    await bus.start()
    access = PlaybackAccess(store.broadcast, store.revocations, ttl=3600)
    follower = asyncio.create_task(access.follow(bus))
    await asyncio.sleep(0.01)
    assert (await access.state("res")).epoch == 0
    store.epoch = 1
    assert (await access.state("res")).epoch == 0  # cached
    await announce(bus, "res")
    for _ in range(100):
        if (await access.state("res")).epoch == 1:
            break
        await asyncio.sleep(0.01)
    assert (await access.state("res")).epoch == 1
    follower.cancel()
    await asyncio.gather(follower, return_exceptions=True)
    await access.close()
    await bus.close()


async def test_a_store_outage_keeps_the_last_state_and_fails_closed_without_one(store: Store):
    access = PlaybackAccess(store.broadcast, store.revocations, ttl=0.01)
    store.banned = {"v1"}
    assert (await access.state("res")).banned == {"v1"}
    store.down = True
    await asyncio.sleep(0.02)
    assert (await access.state("res")).banned == {"v1"}  # kept
    with pytest.raises(Unavailable):
        await access.state("never-seen")
    store.down = False
    assert (await access.state("never-seen")).gated
    await access.close()


async def test_the_cache_is_bounded(store: Store):
    access = PlaybackAccess(store.broadcast, store.revocations, ttl=0.0, max_entries=100)
    for n in range(1000):
        await access.state(f"random{n}")
    assert len(access._entries) <= 100
    await access.close()
