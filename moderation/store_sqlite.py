"""SQLite moderation store: the embedded default (one node), in ``<data_dir>/moderation.db``.

One connection used from worker threads behind an asyncio lock, so the event
loop never waits on the disk.  Retention: archived comments older than
``retention`` are deleted and older audit entries lose their text copy
(pruned at open and at most once a minute on write).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .bans import BanRecord
from .store import MAX_ARCHIVE, MAX_AUDIT, ArchivedComment, AuditEntry, ModeratorGrant
from .shared_limits import NodeLocal
from .write_behind import WriteBehind

__all__ = ["SqliteModerationStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (broadcast_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS epochs (broadcast_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS grants (token_hash TEXT PRIMARY KEY, id TEXT UNIQUE, broadcast_id TEXT, label TEXT,
                                   created_at REAL, created_by TEXT);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, broadcast_id TEXT, ts REAL, actor TEXT,
                                  action TEXT, viewer_id TEXT, comment_id TEXT, text TEXT, reason TEXT,
                                  filter TEXT, detail TEXT);
CREATE INDEX IF NOT EXISTS audit_broadcast ON audit (broadcast_id, id);
CREATE INDEX IF NOT EXISTS audit_viewer ON audit (viewer_id);
CREATE TABLE IF NOT EXISTS archive (rowid INTEGER PRIMARY KEY AUTOINCREMENT, viewer_id TEXT, broadcast_id TEXT,
                                    ts REAL, text TEXT, verdict TEXT, shown_text TEXT, filter TEXT, reason TEXT);
CREATE INDEX IF NOT EXISTS archive_viewer ON archive (viewer_id, rowid);
CREATE INDEX IF NOT EXISTS archive_ts ON archive (ts);
"""

_PRUNE_EVERY = 60.0
_BAN_COLUMNS = ("broadcast_id", "viewer_id", "until", "actor", "reason", "ts", "address_key")


class SqliteModerationStore:
    def __init__(self, path: Path, retention: float = 7 * 24 * 3600.0) -> None:
        self.path = path
        self.retention = retention
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._pruned_at = 0.0
        self._archive = WriteBehind(self._archive_batch, name="moderation-archive")

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # 0600 before SQLite opens it (its -wal/-shm take that mode)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._db = await asyncio.to_thread(self._connect)
        await self._call(self._prune)
        self._archive.start()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        return db

    async def close(self) -> None:
        await self._archive.close()
        if self._db is not None:
            db, self._db = self._db, None
            async with self._lock:
                await asyncio.to_thread(db.close)

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        if db is None:
            raise RuntimeError("moderation store is not open")
        async with self._lock:
            return await asyncio.to_thread(fn, db)

    def _prune(self, db: sqlite3.Connection) -> None:
        cutoff = time.time() - self.retention
        db.execute("DELETE FROM archive WHERE ts < ?", (cutoff,))
        db.execute("UPDATE audit SET text = NULL WHERE ts < ? AND text IS NOT NULL", (cutoff,))
        self._pruned_at = time.monotonic()

    # --- settings -----------------------------------------------------------------
    async def get_settings(self, broadcast_id: str) -> dict[str, Any] | None:
        rows = await self._call(lambda db: db.execute("SELECT doc FROM settings WHERE broadcast_id = ?",
                                                      (broadcast_id,)).fetchall())
        return json.loads(rows[0][0]) if rows else None

    async def put_settings(self, broadcast_id: str, settings: dict[str, Any]) -> None:
        doc = json.dumps(settings)
        await self._call(lambda db: db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (broadcast_id, doc)))

    # --- bans (legacy: they live in the chat state now) ---------------------------------
    async def legacy_bans(self) -> list[BanRecord]:
        """The active bans a database from before kept (table ``bans``)."""
        def read(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bans'").fetchall():
                return []
            columns = [row[1] for row in db.execute("PRAGMA table_info(bans)")]
            rows = db.execute("SELECT * FROM bans ORDER BY ts").fetchall()
            return [tuple(dict(zip(columns, row)).get(name) for name in _BAN_COLUMNS) for row in rows]

        now = time.time()
        return [r for r in (BanRecord(*row) for row in await self._call(read)) if r.active(now)]

    async def drop_legacy_bans(self) -> None:
        await self._call(lambda db: db.execute("DROP TABLE IF EXISTS bans"))

    # --- viewer-token epochs ------------------------------------------------------------
    async def token_epoch(self, broadcast_id: str) -> int:
        rows = await self._call(lambda db: db.execute("SELECT epoch FROM epochs WHERE broadcast_id = ?",
                                                      (broadcast_id,)).fetchall())
        return int(rows[0][0]) if rows else 0

    async def raise_token_epoch(self, broadcast_id: str) -> int:
        def bump(db: sqlite3.Connection) -> int:
            db.execute("INSERT INTO epochs VALUES (?, 1) ON CONFLICT (broadcast_id) DO UPDATE SET epoch = epoch + 1",
                       (broadcast_id,))
            return int(db.execute("SELECT epoch FROM epochs WHERE broadcast_id = ?", (broadcast_id,)).fetchone()[0])
        return await self._call(bump)

    # --- moderator grants -------------------------------------------------------------
    async def add_grant(self, grant: ModeratorGrant, token_hash: str) -> None:
        g = grant
        await self._call(lambda db: db.execute("INSERT INTO grants VALUES (?, ?, ?, ?, ?, ?)",
                                               (token_hash, g.id, g.broadcast_id, g.label, g.created_at,
                                                g.created_by)))

    async def find_grant(self, token_hash: str) -> ModeratorGrant | None:
        rows = await self._call(lambda db: db.execute(
            "SELECT id, broadcast_id, label, created_at, created_by FROM grants WHERE token_hash = ?",
            (token_hash,)).fetchall())
        return ModeratorGrant(*rows[0]) if rows else None

    async def list_grants(self, broadcast_id: str) -> list[ModeratorGrant]:
        rows = await self._call(lambda db: db.execute(
            "SELECT id, broadcast_id, label, created_at, created_by FROM grants WHERE broadcast_id = ? "
            "ORDER BY created_at", (broadcast_id,)).fetchall())
        return [ModeratorGrant(*row) for row in rows]

    async def delete_grant(self, broadcast_id: str, grant_id: str) -> bool:
        cur = await self._call(lambda db: db.execute("DELETE FROM grants WHERE broadcast_id = ? AND id = ?",
                                                     (broadcast_id, grant_id)))
        return cur.rowcount > 0

    # --- audit ----------------------------------------------------------------------
    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        e = entry
        detail = json.dumps(e.detail) if e.detail is not None else None

        def write(db: sqlite3.Connection) -> int:
            cur = db.execute("INSERT INTO audit (broadcast_id, ts, actor, action, viewer_id, comment_id, text, "
                             "reason, filter, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (e.broadcast_id, e.ts, e.actor, e.action, e.viewer_id, e.comment_id, e.text,
                              e.reason, e.filter, detail))
            new_id = int(cur.lastrowid or 0)
            if new_id % 100 == 0:
                # bounded per broadcast: drop the oldest beyond MAX_AUDIT
                db.execute("DELETE FROM audit WHERE broadcast_id = ? AND id <= "
                           "(SELECT id FROM audit WHERE broadcast_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                           (e.broadcast_id, e.broadcast_id, MAX_AUDIT))
            return new_id
        new_id = await self._call(write)
        await self._maybe_prune()
        return AuditEntry(e.broadcast_id, e.actor, e.action, e.ts, e.viewer_id, e.comment_id, e.text, e.reason,
                          e.filter, e.detail, new_id)

    async def list_audit(self, broadcast_id: str, after: int = 0, limit: int = 100) -> list[AuditEntry]:
        rows = await self._call(lambda db: db.execute(
            "SELECT broadcast_id, actor, action, ts, viewer_id, comment_id, text, reason, filter, detail, id "
            "FROM audit WHERE broadcast_id = ? AND id > ? ORDER BY id DESC LIMIT ?",
            (broadcast_id, after, limit)).fetchall())
        out = [_audit_entry(row) for row in rows]
        out.reverse()
        return out

    async def scrub_audit_text(self, viewer_id: str) -> int:
        cur = await self._call(lambda db: db.execute(
            "UPDATE audit SET text = NULL WHERE viewer_id = ? AND text IS NOT NULL", (viewer_id,)))
        return cur.rowcount

    # --- comment archive ------------------------------------------------------------------
    async def archive_comment(self, comment: ArchivedComment) -> None:
        await self._archive.write(comment)

    async def queue_archive(self, comment: ArchivedComment) -> None:
        await self._archive.submit(comment)

    async def _archive_batch(self, batch: list[ArchivedComment]) -> None:
        def write(db: sqlite3.Connection) -> None:
            # One transaction (one commit) for the whole batch.
            db.execute("BEGIN")
            try:
                for c in batch:
                    cur = db.execute("INSERT INTO archive (viewer_id, broadcast_id, ts, text, verdict, shown_text, "
                                     "filter, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                     (c.viewer_id, c.broadcast_id, c.ts, c.text, c.verdict, c.shown_text, c.filter,
                                      c.reason))
                    if (cur.lastrowid or 0) % 100 == 0:
                        db.execute("DELETE FROM archive WHERE viewer_id = ? AND rowid <= (SELECT rowid FROM archive "
                                   "WHERE viewer_id = ? ORDER BY rowid DESC LIMIT 1 OFFSET ?)",
                                   (c.viewer_id, c.viewer_id, MAX_ARCHIVE))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        await self._call(write)
        await self._maybe_prune()

    async def viewer_comments(self, viewer_id: str) -> list[ArchivedComment]:
        await self._archive.flush()
        cutoff = time.time() - self.retention
        rows = await self._call(lambda db: db.execute(
            "SELECT viewer_id, broadcast_id, ts, text, verdict, shown_text, filter, reason FROM archive "
            "WHERE viewer_id = ? AND ts >= ? ORDER BY rowid", (viewer_id, cutoff)).fetchall())
        return [ArchivedComment(*row) for row in rows]

    async def erase_viewer_comments(self, viewer_id: str) -> int:
        await self._archive.flush()
        cur = await self._call(lambda db: db.execute("DELETE FROM archive WHERE viewer_id = ?", (viewer_id,)))
        return cur.rowcount

    async def erase_broadcast_comments(self, broadcast_id: str) -> int:
        await self._archive.flush()
        cur = await self._call(lambda db: db.execute("DELETE FROM archive WHERE broadcast_id = ?", (broadcast_id,)))
        return cur.rowcount

    async def _maybe_prune(self) -> None:
        if time.monotonic() - self._pruned_at > _PRUNE_EVERY:
            await self._call(self._prune)

    def shared_limits(self) -> NodeLocal:
        return NodeLocal()  # one node: the pipeline's filters hold the state


def _audit_entry(row: tuple[Any, ...]) -> AuditEntry:
    """An AuditEntry from a row of ``list_audit``'s SELECT (its columns in the dataclass' order)."""
    broadcast_id, actor, action, ts, viewer_id, comment_id, text, reason, filter_, detail, id_ = row
    return AuditEntry(broadcast_id, actor, action, ts, viewer_id, comment_id, text, reason, filter_,
                      json.loads(detail) if detail else None, id_)
