"""Broadcast metadata in Redis, so a broadcast created on any node is known to all.

One hash ``onair:broadcasts`` maps id -> JSON document.  The redis client
reconnects by itself; a call made while Redis is down raises
``redis.exceptions.ConnectionError``, which the API turns into a 503.
"""

from __future__ import annotations

from redis.asyncio import Redis

from broadcaster.registry import Broadcast

_KEY = "onair:broadcasts"


class RedisBroadcastStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def open(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        """The client belongs to the node; nothing to release here."""

    async def create(self, broadcast: Broadcast) -> None:
        await self._redis.hset(_KEY, broadcast.id, broadcast.to_json())

    async def get(self, broadcast_id: str) -> Broadcast | None:
        raw = await self._redis.hget(_KEY, broadcast_id)
        return Broadcast.from_json(raw) if raw else None

    async def list(self) -> list[Broadcast]:
        docs = await self._redis.hvals(_KEY)
        return sorted((Broadcast.from_json(d) for d in docs), key=lambda b: b.created_at)

    async def put(self, broadcast: Broadcast) -> None:
        await self._redis.hset(_KEY, broadcast.id, broadcast.to_json())

    async def delete(self, broadcast_id: str) -> bool:
        return bool(await self._redis.hdel(_KEY, broadcast_id))
