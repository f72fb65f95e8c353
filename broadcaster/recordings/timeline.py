"""The chat timeline of a broadcast: every comment published and each second's reaction counts, kept
for its recording's chat replay (the chat history proper keeps only the last few comments).

One Protocol, two backends picked like the other shared state: SQLite under the data dir
(``recordings.db``, one node) and Redis (every node of a cluster records the comments and reactions
it publishes; any node serves the replay).  A removed comment is deleted here, not marked: it can
never come back in a replay; erasing a viewer deletes every comment of theirs.

    Redis   <prefix>{<broadcast>}:comments     hash  comment id -> comment JSON (with its author)
            <prefix>{<broadcast>}:reactions    hash  "<epoch second>:<kind>" -> count
            <prefix>viewer:<viewer id>          set   broadcasts the viewer commented on (for erasure)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from redis.asyncio import Redis

from broadcaster.storage import text

T = TypeVar("T")


class ChatTimeline(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def add_comment(self, broadcast_id: str, comment: dict[str, Any]) -> None:
        """Keep a published comment (``id``, ``seq``, ``ts`` in ms, ``author``, ``text``, ``question``)."""
    async def remove_comment(self, broadcast_id: str, comment_id: str) -> None: ...
    async def add_reactions(self, broadcast_id: str, second: int, counts: dict[str, int]) -> None: ...
    async def comments(self, broadcast_id: str) -> list[dict[str, Any]]:
        """The broadcast's comments in ``seq`` order."""
    async def reactions(self, broadcast_id: str) -> dict[int, dict[str, int]]:
        """Reaction counts by epoch second."""
    async def erase_broadcast(self, broadcast_id: str) -> None: ...
    async def erase_viewer(self, viewer_id: str) -> int:
        """Delete every comment ``viewer_id`` wrote, on every broadcast; how many."""


def author_id(comment: dict[str, Any]) -> str | None:
    author = comment.get("author")
    return str(author["id"]) if isinstance(author, dict) and author.get("id") is not None else None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS comments (broadcast_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER, author_id TEXT,
                                     doc TEXT NOT NULL, PRIMARY KEY (broadcast_id, id));
CREATE INDEX IF NOT EXISTS comments_author ON comments (author_id);
CREATE TABLE IF NOT EXISTS reactions (broadcast_id TEXT NOT NULL, second INTEGER NOT NULL, kind TEXT NOT NULL,
                                      n INTEGER NOT NULL, PRIMARY KEY (broadcast_id, second, kind));
"""


class SqliteTimeline:
    """One connection used from worker threads behind an asyncio lock (the loop never waits on disk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # 0600 before SQLite opens it
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._db = await asyncio.to_thread(self._connect)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        return db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            async with self._lock:
                await asyncio.to_thread(db.close)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            raise RuntimeError("the chat timeline is not open")
        db = self._db
        async with self._lock:
            return await asyncio.to_thread(fn, db)

    async def add_comment(self, broadcast_id: str, comment: dict[str, Any]) -> None:
        doc = json.dumps(comment, ensure_ascii=False, separators=(",", ":"))
        await self._call(lambda db: db.execute(
            "INSERT OR REPLACE INTO comments (broadcast_id, id, seq, author_id, doc) VALUES (?, ?, ?, ?, ?)",
            (broadcast_id, str(comment["id"]), comment.get("seq"), author_id(comment), doc)))

    async def remove_comment(self, broadcast_id: str, comment_id: str) -> None:
        await self._call(lambda db: db.execute("DELETE FROM comments WHERE broadcast_id = ? AND id = ?",
                                               (broadcast_id, comment_id)))

    async def add_reactions(self, broadcast_id: str, second: int, counts: dict[str, int]) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.executemany("INSERT INTO reactions (broadcast_id, second, kind, n) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (broadcast_id, second, kind) DO UPDATE SET n = n + excluded.n",
                           [(broadcast_id, second, kind, n) for kind, n in counts.items()])
        await self._call(write)

    async def comments(self, broadcast_id: str) -> list[dict[str, Any]]:
        rows = await self._call(lambda db: db.execute(
            "SELECT doc FROM comments WHERE broadcast_id = ? ORDER BY seq", (broadcast_id,)).fetchall())
        return [json.loads(row[0]) for row in rows]

    async def reactions(self, broadcast_id: str) -> dict[int, dict[str, int]]:
        rows = await self._call(lambda db: db.execute(
            "SELECT second, kind, n FROM reactions WHERE broadcast_id = ? ORDER BY second", (broadcast_id,)).fetchall())
        out: dict[int, dict[str, int]] = {}
        for second, kind, n in rows:
            out.setdefault(int(second), {})[str(kind)] = int(n)
        return out

    async def erase_broadcast(self, broadcast_id: str) -> None:
        def erase(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM comments WHERE broadcast_id = ?", (broadcast_id,))
            db.execute("DELETE FROM reactions WHERE broadcast_id = ?", (broadcast_id,))
        await self._call(erase)

    async def erase_viewer(self, viewer_id: str) -> int:
        cur = await self._call(lambda db: db.execute("DELETE FROM comments WHERE author_id = ?", (viewer_id,)))
        return cur.rowcount


class RedisTimeline:
    def __init__(self, redis: Redis, prefix: str = "onair:rec:") -> None:
        self._redis = redis
        self.prefix = prefix

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass  # the connection is the node's

    def _key(self, broadcast_id: str, name: str) -> str:
        return f"{self.prefix}{{{broadcast_id}}}:{name}"

    def _viewer(self, viewer_id: str) -> str:
        return f"{self.prefix}viewer:{viewer_id}"

    async def add_comment(self, broadcast_id: str, comment: dict[str, Any]) -> None:
        doc = json.dumps(comment, ensure_ascii=False, separators=(",", ":"))
        await self._redis.hset(self._key(broadcast_id, "comments"), str(comment["id"]), doc)
        if (author := author_id(comment)) is not None:
            await self._redis.sadd(self._viewer(author), broadcast_id)

    async def remove_comment(self, broadcast_id: str, comment_id: str) -> None:
        await self._redis.hdel(self._key(broadcast_id, "comments"), comment_id)

    async def add_reactions(self, broadcast_id: str, second: int, counts: dict[str, int]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for kind, n in counts.items():
                pipe.hincrby(self._key(broadcast_id, "reactions"), f"{second}:{kind}", n)
            await pipe.execute()

    async def comments(self, broadcast_id: str) -> list[dict[str, Any]]:
        raw = await self._redis.hvals(self._key(broadcast_id, "comments"))
        return sorted((json.loads(doc) for doc in raw), key=lambda c: int(c.get("seq") or 0))

    async def reactions(self, broadcast_id: str) -> dict[int, dict[str, int]]:
        raw = await self._redis.hgetall(self._key(broadcast_id, "reactions"))
        out: dict[int, dict[str, int]] = {}
        for field, n in raw.items():
            second, _, kind = text(field).partition(":")
            out.setdefault(int(second), {})[kind] = int(n)
        return dict(sorted(out.items()))

    async def erase_broadcast(self, broadcast_id: str) -> None:
        await self._redis.delete(self._key(broadcast_id, "comments"), self._key(broadcast_id, "reactions"))

    async def erase_viewer(self, viewer_id: str) -> int:
        erased = 0
        for raw in await self._redis.smembers(self._viewer(viewer_id)):
            broadcast_id = text(raw)
            key = self._key(broadcast_id, "comments")
            mine = [cid for cid, doc in (await self._redis.hgetall(key)).items()
                    if author_id(json.loads(doc)) == viewer_id]
            if mine:
                erased += int(await self._redis.hdel(key, *mine))
        await self._redis.delete(self._viewer(viewer_id))
        return erased


__all__ = ["ChatTimeline", "RedisTimeline", "SqliteTimeline", "author_id"]
