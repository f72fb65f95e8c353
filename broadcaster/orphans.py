"""Broadcasts whose node is gone: moved to ``reconnecting``, then ``ended``, by any node that notices.

Every node of a cluster runs one :class:`OrphanSweeper` (a task its app owns).
Each ``interval`` it reads the leases (:mod:`broadcaster.leases`); a broadcast
whose lease expired and that no node serves is claimed as an orphan by the
first node to notice, put in ``reconnecting`` and given ``grace`` seconds for
its publisher to come back, on any node (which takes the lease over).  When
the grace runs out and nobody took it, the claiming node ends it; its HLS
stays as a replay on the node that died (served again when that node comes
back).  A node that was merely cut off from Redis reclaims its leases at its
next renewal and puts its broadcasts' status back.

Worst case from ``kill -9`` to ``ended``: lease TTL + interval + grace
(5 + 1 + 6 s with the defaults).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from broadcaster.leases import RedisLeases
from broadcaster.registry import Broadcast, BroadcastStore, Status, with_status

log = logging.getLogger("onair.orphans")


class OrphanSweeper:
    def __init__(self, store: BroadcastStore, leases: RedisLeases, serves: Callable[[str], bool], *,
                 grace: float = 6.0, interval: float = 1.0,
                 announce: Callable[[Broadcast], None] | None = None) -> None:
        self._store = store
        #: told of each status the sweeper sets (the webhooks hub listens, through the live manager)
        self._announce = announce or (lambda broadcast: None)
        self._leases = leases
        self._serves = serves  # does this node have a session for the broadcast?
        self.grace = grace
        self.interval = interval
        #: broadcasts this node claimed as orphans -> monotonic time their grace ends
        self.claimed: dict[str, float] = {}
        self._redis_down = False

    async def run(self) -> None:
        adopted = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                if not adopted:
                    await self.adopt()
                    adopted = True
                await self.sweep()
                if self._redis_down:
                    log.info("orphan sweeper: Redis answers again")
                self._redis_down = False
            except RedisError as exc:
                if not self._redis_down:
                    log.warning("orphan sweeper: Redis unavailable (%s); retrying every %.0f s", exc, self.interval)
                self._redis_down = True

    async def adopt(self) -> None:
        """Once: broadcasts the registry says are live but that no lease ever named (left by a version
        without leases) are swept like the others; those whose node is alive have a lease by now."""
        live = [b.id for b in await self._store.list() if b.status in (Status.LIVE, Status.RECONNECTING)]
        await self._leases.track(live)

    async def sweep(self) -> None:
        holders = await self._leases.holders()
        mine = f"orphan:{self._leases.node_id}"
        now = time.monotonic()
        for broadcast_id, holder in holders.items():
            if broadcast_id in self.claimed:
                if holder != mine:
                    del self.claimed[broadcast_id]  # its publisher came back somewhere: not ours to end
                elif now >= self.claimed[broadcast_id]:
                    await self._settle(broadcast_id)
            elif holder is None and not self._serves(broadcast_id):
                await self._claim(broadcast_id)
        for broadcast_id in [b for b in self.claimed if b not in holders]:
            del self.claimed[broadcast_id]

    async def _claim(self, broadcast_id: str) -> None:
        if not await self._leases.claim_orphan(broadcast_id, self.grace):
            return
        broadcast = await self._store.get(broadcast_id)
        if broadcast is None or broadcast.status not in (Status.LIVE, Status.RECONNECTING):
            await self._leases.settle_orphan(broadcast_id)  # nothing live to look after
            return
        self.claimed[broadcast_id] = time.monotonic() + self.grace
        if broadcast.status is Status.LIVE:
            await self._store.put(with_status(broadcast, Status.RECONNECTING))
            self._announce(with_status(broadcast, Status.RECONNECTING))
        log.warning("broadcast %s: its node %s is gone (lease expired): reconnecting, grace %g s on any node",
                    broadcast_id, broadcast.origin or "?", self.grace)

    async def _settle(self, broadcast_id: str) -> None:
        del self.claimed[broadcast_id]
        if not await self._leases.settle_orphan(broadcast_id):
            return
        broadcast = await self._store.get(broadcast_id)
        if broadcast is not None and broadcast.status in (Status.LIVE, Status.RECONNECTING):
            ended = with_status(broadcast, Status.ENDED)
            await self._store.put(ended)
            self._announce(ended)
            log.info("broadcast %s ended: its node %s is gone and no publisher came back", broadcast_id,
                     broadcast.origin or "?")


__all__ = ["OrphanSweeper"]
