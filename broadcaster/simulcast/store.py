"""Where simulcast targets live: SQLite in the data dir (one node) or Redis (a cluster).

The stream key is a secret onair must send, so it is kept whole, like the
broadcasts' own stream keys: ``simulcast.db`` is 0600 in the 0700 data dir;
in Redis, one hash per broadcast (``onair:simulcast:<broadcast id>``).  No API
answer ever carries it (:meth:`Target.public`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, Protocol

from redis.asyncio import Redis

from broadcaster.datadir import private_file
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
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        private_file(self._path)  # 0600 before SQLite opens it
        self._db = await asyncio.to_thread(self._connect)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS targets (broadcast_id TEXT NOT NULL, id TEXT NOT NULL, "
                   "created_at REAL, doc TEXT NOT NULL, PRIMARY KEY (broadcast_id, id))")
        return db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    async def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        assert self._db is not None, "store is not open"
        db = self._db
        async with self._lock:
            return await asyncio.to_thread(lambda: db.execute(sql, params).fetchall())

    async def list(self, broadcast_id: str) -> list[Target]:
        rows = await self._run("SELECT doc FROM targets WHERE broadcast_id = ? ORDER BY created_at", (broadcast_id,))
        return [Target.from_json(r[0]) for r in rows]

    async def put(self, target: Target) -> None:
        await self._run("INSERT OR REPLACE INTO targets (broadcast_id, id, created_at, doc) VALUES (?, ?, ?, ?)",
                        (target.broadcast_id, target.id, target.created_at, target.to_json()))

    async def delete(self, broadcast_id: str, target_id: str) -> bool:
        assert self._db is not None, "store is not open"
        db = self._db
        async with self._lock:
            cursor = await asyncio.to_thread(
                db.execute, "DELETE FROM targets WHERE broadcast_id = ? AND id = ?", (broadcast_id, target_id))
            return cursor.rowcount > 0

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
