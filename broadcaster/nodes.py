"""The node directory: where each live node of a cluster can be reached by the others.

Every node with Redis keeps ``onair:node:<node id>`` = its advertised base URL
(``--advertise-url``) with a TTL of the lease TTL, renewed every quarter of it
(its heartbeat).  A node killed with ``kill -9`` stops renewing and drops out
of the directory when its leases expire.  The HLS origin asks it where the node
ingesting a broadcast is (``broadcaster/hls_route.py``).

Without Redis there is one node: the directory knows nobody else
(:class:`LocalNodes`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("onair.nodes")


class NodeDirectory(Protocol):
    async def address(self, node_id: str) -> str | None:
        """The base URL ``node_id`` advertises, or None if it is not alive (or unknown)."""
        ...

    async def run(self) -> None:
        """Announce this node until cancelled."""
        ...


class LocalNodes:
    """One node, no Redis: there is no other node to reach."""

    async def address(self, node_id: str) -> str | None:
        return None

    async def run(self) -> None:
        await asyncio.Event().wait()


class RedisNodes:
    """The directory in Redis (see the module docstring)."""

    def __init__(self, redis: Redis, node_id: str, url: str, ttl: float = 5.0, prefix: str = "onair:") -> None:
        self.node_id = node_id
        self.url = url
        self.ttl = ttl
        self._redis = redis
        self._prefix = prefix

    def key(self, node_id: str) -> str:
        return f"{self._prefix}node:{node_id}"

    async def announce(self) -> None:
        await self._redis.set(self.key(self.node_id), self.url, px=int(self.ttl * 1000))

    async def withdraw(self) -> None:
        """This node stops: the others stop sending it requests at once (not when the TTL runs out)."""
        await self._redis.delete(self.key(self.node_id))

    async def address(self, node_id: str) -> str | None:
        raw = await self._redis.get(self.key(node_id))
        return raw.decode() if isinstance(raw, bytes) else raw

    async def run(self) -> None:
        failing = False
        while True:
            try:
                await self.announce()
                if failing:
                    log.info("node directory: announced again")
                failing = False
            except (RedisError, OSError) as exc:
                if not failing:
                    log.warning("node directory: cannot announce this node (%s); retrying", exc)
                failing = True
            await asyncio.sleep(self.ttl / 4)


__all__ = ["LocalNodes", "NodeDirectory", "RedisNodes"]
