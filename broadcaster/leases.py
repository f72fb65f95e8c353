"""Leases on live broadcasts: which node a live broadcast belongs to, and noticing that node is gone.

A node holds a lease on every broadcast it has a session for (live, or
waiting out its reconnect grace).  With Redis a lease is the key
``onair:lease:<id>`` with a TTL of ``ttl`` seconds, renewed every ``ttl / 4``;
a node killed with ``kill -9`` stops renewing and its leases expire.  The key
holds one of::

    <node id>           held by that node
    orphan:<node id>    the holder is gone; that node counts the orphan grace down
    ended:<node id>     ended by that node (force-end, or the orphan grace ran out):
                        nobody takes it; the key expires after a minute

Every change is one Lua script, so two nodes never both win::

    acquire / renew   nil | me | orphan:*  ->  me       (a publisher may come back on any node;
                                                          a live node reclaims a lease Redis lost)
    claim_orphan      nil                  ->  orphan:me
    settle_orphan     orphan:me            ->  ended:me
    revoke            anything             ->  ended:me  (an admin's force-end)
    release           me                   ->  deleted

``onair:leased`` (a set) lists the broadcasts that hold or held a lease, so a
sweeper finds orphans without reading the whole registry.  Without Redis there
is one node and every lease is its own (:class:`LocalLeases`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from broadcaster.storage import text

log = logging.getLogger("onair.leases")

#: how long an ``ended:`` marker keeps other nodes from taking a broadcast that was just ended
ENDED_MARK_MS = 60_000

_TAKE = """
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] or string.sub(v, 1, 7) == 'orphan:' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[3])
  if v == false or v == ARGV[1] then return {1, ''} end
  return {2, v}
end
return {0, v}
"""

_CLAIM_ORPHAN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_SWAP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
redis.call('SREM', KEYS[2], ARGV[4])
return 1
"""


@dataclass(frozen=True)
class Taken:
    """The answer of :meth:`Leases.acquire`: ``held`` or not; ``previous`` holder if it was an orphan
    (the broadcast comes back on this node) or if it is someone else's (refused)."""

    held: bool
    previous: str = ""

    @property
    def reclaimed(self) -> bool:
        return self.held and self.previous.startswith("orphan:")


class Leases(Protocol):
    node_id: str

    async def acquire(self, broadcast_id: str) -> Taken: ...
    async def release(self, broadcast_id: str) -> None: ...
    async def revoke(self, broadcast_id: str) -> None: ...


class LocalLeases:
    """One node, no Redis: this node holds every lease."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id

    async def acquire(self, broadcast_id: str) -> Taken:
        return Taken(True)

    async def release(self, broadcast_id: str) -> None:
        return None

    async def revoke(self, broadcast_id: str) -> None:
        return None


class RedisLeases:
    """Leases in Redis (see the module docstring)."""

    def __init__(self, redis: Redis, node_id: str, ttl: float = 5.0, prefix: str = "onair:") -> None:
        self.node_id = node_id
        self.ttl = ttl
        self._redis = redis
        self._prefix = prefix
        self._set = f"{prefix}leased"
        self._take = redis.register_script(_TAKE)
        self._claim = redis.register_script(_CLAIM_ORPHAN)
        self._swap = redis.register_script(_SWAP)

    def key(self, broadcast_id: str) -> str:
        return f"{self._prefix}lease:{broadcast_id}"

    @property
    def _ttl_ms(self) -> int:
        return int(self.ttl * 1000)

    async def acquire(self, broadcast_id: str) -> Taken:
        """Take the lease for this node (also renews it); refused while another live node holds it."""
        code, previous = await self._take(keys=[self.key(broadcast_id), self._set],
                                          args=[self.node_id, self._ttl_ms, broadcast_id])
        previous = previous.decode() if isinstance(previous, bytes) else str(previous or "")
        return Taken(code != 0, previous if code != 1 else "")

    async def release(self, broadcast_id: str) -> None:
        """This node is done with the broadcast (it ended here)."""
        await self._swap(keys=[self.key(broadcast_id), self._set], args=[self.node_id, "", 0, broadcast_id])

    async def revoke(self, broadcast_id: str) -> None:
        """End the broadcast wherever it is: its holder finds ``ended:`` at its next renewal and stops."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key(broadcast_id), f"ended:{self.node_id}", px=ENDED_MARK_MS)
            pipe.srem(self._set, broadcast_id)
            await pipe.execute()

    # --- the sweeper's side -------------------------------------------------

    async def holders(self) -> dict[str, str | None]:
        """Every broadcast in the leased set and its lease's value (None: expired)."""
        ids = sorted(text(m) for m in await self._redis.smembers(self._set))
        if not ids:
            return {}
        values = await self._redis.mget([self.key(i) for i in ids])
        return {i: text(v) if v is not None else None for i, v in zip(ids, values)}

    async def claim_orphan(self, broadcast_id: str, grace: float) -> bool:
        """Mark an expired lease as this node's orphan to count down (False: someone was quicker)."""
        return bool(await self._claim(keys=[self.key(broadcast_id)],
                                      args=[f"orphan:{self.node_id}", int((grace + self.ttl) * 1000)]))

    async def settle_orphan(self, broadcast_id: str) -> bool:
        """The orphan grace ran out: True if this node may end the broadcast (nobody took it over)."""
        return bool(await self._swap(keys=[self.key(broadcast_id), self._set],
                                     args=[f"orphan:{self.node_id}", f"ended:{self.node_id}", ENDED_MARK_MS,
                                           broadcast_id]))

    async def track(self, broadcast_ids: list[str]) -> None:
        """Put broadcasts in the leased set, so the sweeper looks after them even if no lease ever named
        them (live under a version of onair without leases)."""
        if broadcast_ids:
            await self._redis.sadd(self._set, *broadcast_ids)

    async def forget(self, broadcast_id: str) -> None:
        """Drop a broadcast that is no longer live from the leased set."""
        await self._redis.srem(self._set, broadcast_id)


__all__ = ["ENDED_MARK_MS", "Leases", "LocalLeases", "RedisLeases", "Taken"]
