"""One SQLite file of the node's data dir: private (0600), WAL, one statement at a time in a thread.

The embedded stores (``registry.SqliteBroadcastStore``, ``simulcast.store.SqliteTargetStore``) keep
their rows here: ``open`` creates the file 0600 before SQLite does (its -wal/-shm files take the same
mode) and runs the schema; ``rows`` and ``changed`` run one statement off the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from broadcaster.datadir import private_file


class SqliteFile:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._schema = schema
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        private_file(self.path)
        self._db = await asyncio.to_thread(self._connect)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(self._schema)
        return db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows a statement returns (none for a write)."""
        db = self._open_db()
        async with self._lock:
            return await asyncio.to_thread(lambda: db.execute(sql, params).fetchall())

    async def changed(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """How many rows a write changed."""
        db = self._open_db()
        async with self._lock:
            cursor = await asyncio.to_thread(db.execute, sql, params)
            return cursor.rowcount

    def _open_db(self) -> sqlite3.Connection:
        assert self._db is not None, "store is not open"
        return self._db
