"""The pub/sub bus and shared chat state: memory (one node) or Redis (a cluster).

``open_bus(redis_url, ...)`` picks the backend: an empty URL gives the embedded
in-process bus, ``redis://`` the Redis one.
"""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from broadcaster.bus.base import (DEFAULT_QUEUE, GAP, Admission, Banned, Bus, BusError, BusUnavailable, ChatState,
                                  Held, PresenceCount, PresenceUpdate, PubSub, Subscription)
from broadcaster.bus.memory import MemoryBus
from broadcaster.bus.redis import RedisBus


def open_bus(redis_url: str = "", *, prefix: str = "onair:chat:", history_size: int = 50,
             retention: float = 7 * 24 * 3600.0, secret_path: Path | None = None,
             held_path: Path | None = None, bans_path: Path | None = None, redis: Redis | None = None) -> Bus:
    """A bus for ``redis_url`` (not started yet: call ``await bus.start()``); ``redis``: the node's
    client to use (and leave open) instead of a pool of the bus' own."""
    if not redis_url:
        return MemoryBus(history_size=history_size, secret_path=secret_path, held_path=held_path, bans_path=bans_path)
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"unsupported bus URL scheme: {redis_url.split(':', 1)[0]!r}")
    return RedisBus(redis_url, prefix=prefix, history_size=history_size, retention=retention, redis=redis)


__all__ = ["Admission", "Banned", "Bus", "BusError", "BusUnavailable", "ChatState", "DEFAULT_QUEUE", "GAP", "Held",
           "MemoryBus", "PresenceCount", "PresenceUpdate", "PubSub", "RedisBus", "Subscription", "open_bus"]
