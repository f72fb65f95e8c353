"""Where simulcast targets live: SQLite in the data dir (one node) or Redis (a cluster).

The stream key is a secret onair must send, so it is kept whole, like the
broadcasts' own stream keys: ``simulcast.db`` is 0600 in the 0700 data dir;
in Redis, one hash per broadcast (``onair:simulcast:<broadcast id>``).  No API
answer ever carries it (:meth:`Target.public`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from redis.asyncio import Redis

from broadcaster.sqlite_file import SqliteFile
from broadcaster.simulcast.targets import Target


class TargetStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def list(self, broadcast_id: str) -> list[Target]: ...
    async def put(self, target: Target) -> None: ...
    async def delete(self, broadcast_id: str, target_id: str) -> bool: ...
    async def delete_all(self, broadcast_id: str) -> None: ...


class SqliteTargetStore:
    """``<data_dir>/simulcast.db``; each call runs in a thread."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, "CREATE TABLE IF NOT EXISTS targets (broadcast_id TEXT NOT NULL, "
                                      "id TEXT NOT NULL, created_at REAL, doc TEXT NOT NULL, "
                                      "PRIMARY KEY (broadcast_id, id))")
        self._run = self._file.rows

    async def open(self) -> None:
        await self._file.open()

    async def close(self) -> None:
        await self._file.close()

    async def list(self, broadcast_id: str) -> list[Target]:
        rows = await self._run("SELECT doc FROM targets WHERE broadcast_id = ? ORDER BY created_at", (broadcast_id,))
        return [Target.from_json(r[0]) for r in rows]

    async def put(self, target: Target) -> None:
        await self._run("INSERT OR REPLACE INTO targets (broadcast_id, id, created_at, doc) VALUES (?, ?, ?, ?)",
                        (target.broadcast_id, target.id, target.created_at, target.to_json()))

    async def delete(self, broadcast_id: str, target_id: str) -> bool:
        return await self._file.changed("DELETE FROM targets WHERE broadcast_id = ? AND id = ?",
                                        (broadcast_id, target_id)) > 0

    async def delete_all(self, broadcast_id: str) -> None:
        await self._run("DELETE FROM targets WHERE broadcast_id = ?", (broadcast_id,))


class RedisTargetStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @staticmethod
    def _key(broadcast_id: str) -> str:
        return f"onair:simulcast:{broadcast_id}"

    async def open(self) -> None:
        """The client belongs to the node."""

    async def close(self) -> None:
        """The client belongs to the node."""

    async def list(self, broadcast_id: str) -> list[Target]:
        docs = await self._redis.hvals(self._key(broadcast_id))
        return sorted((Target.from_json(d) for d in docs), key=lambda t: t.created_at)

    async def put(self, target: Target) -> None:
        await self._redis.hset(self._key(target.broadcast_id), target.id, target.to_json())

    async def delete(self, broadcast_id: str, target_id: str) -> bool:
        return bool(await self._redis.hdel(self._key(broadcast_id), target_id))

    async def delete_all(self, broadcast_id: str) -> None:
        await self._redis.delete(self._key(broadcast_id))
