"""Keeping a node's leases on its live broadcasts (a task the :class:`~broadcaster.live.LiveManager` owns).

Every quarter of the lease TTL each served broadcast's lease is renewed
(:meth:`~broadcaster.leases.Leases.acquire`).  A lease found taken ends the
session here: taken by ``ended:`` (an admin's force-end from another node) the
broadcast is ended for good; taken by another node (this one was cut off
longer than the TTL and its publisher went elsewhere) the session stops and
the registry is left to that node.  After a renewal that reclaimed an orphaned
lease (Redis lost it, another node marked the broadcast ``reconnecting``), and
after every renewal while Redis answers, the registry is checked against the
session and put right.  Redis errors are logged once per outage; the
broadcasts continue meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from broadcaster.leases import Leases
from broadcaster.registry import BroadcastStore, Status, with_status

if TYPE_CHECKING:
    from broadcaster.live import LiveManager

log = logging.getLogger("onair.leases")


class LeaseKeeper:
    def __init__(self, leases: Leases, store: BroadcastStore, live: "LiveManager", node_id: str) -> None:
        self._leases = leases
        self._store = store
        self._live = live
        self._node_id = node_id
        self.interval = getattr(leases, "ttl", 4.0) / 4

    async def run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.renew()
                if failing:
                    log.info("leases renewed again")
                failing = False
            except RedisError as exc:
                if not failing:
                    log.warning("cannot renew leases (%s): broadcasts continue; retrying every %.2f s", exc,
                                self.interval)
                failing = True

    async def renew(self) -> None:
        for broadcast_id in list(self._live.served()):
            taken = await self._leases.acquire(broadcast_id)
            if not taken.held:
                ended = taken.previous.startswith("ended:")
                await self._live.end(broadcast_id, f"its lease is now {taken.previous}", flush=not ended,
                                     record=ended)
                continue
            await self._assert_status(broadcast_id)

    async def _assert_status(self, broadcast_id: str) -> None:
        broadcast = await self._store.get(broadcast_id)
        publishing = self._live.served().get(broadcast_id)
        if broadcast is None or publishing is None:
            return
        wanted = Status.LIVE if publishing else Status.RECONNECTING
        if broadcast.status is not wanted or broadcast.origin != self._node_id:
            log.warning("broadcast %s: the registry said %s on %s while this node serves it: %s again", broadcast_id,
                        broadcast.status.value, broadcast.origin or "?", wanted.value)
            await self._store.put(replace(with_status(broadcast, wanted), origin=self._node_id))


__all__ = ["LeaseKeeper"]
