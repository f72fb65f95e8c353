"""The moderation store: what host moderation keeps per broadcast, shared by every node.

One async interface, two backends picked by ``open_store``: SQLite under the
node's data dir (the embedded default, one node) and Redis (``redis://``: every
node of a cluster sees the same settings, moderator grants, audit log and
comment archive).  Records are plain frozen dataclasses; the store never
interprets them.

    settings    broadcast id -> ModerationSettings JSON
    epochs      broadcast id -> viewer-token epoch (raised to revoke every viewer token and playback grant)
    grants      sha256(moderator token) -> ModeratorGrant (the token itself is never stored)
    audit       per broadcast, append-only AuditEntry list with increasing ids
    archive     per viewer, every comment it sent (ArchivedComment), for export/erasure; written in
                batches by one task per store (``moderation.write_behind``), in order

The held queue and the bans live in the chat bus (the relay checks them on every join and post), not
here (``moderation.bans``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .bans import BanRecord
    from .shared_limits import SharedLimits

__all__ = ["ArchivedComment", "AuditEntry", "ModerationStore", "ModeratorGrant", "hash_token",
           "open_store"]

#: audit entries kept per broadcast (oldest dropped first)
MAX_AUDIT = 10_000
#: archived comments kept per viewer (oldest dropped first)
MAX_ARCHIVE = 10_000


def hash_token(token: str) -> str:
    """What the store keeps of a moderator token: its SHA-256 (a leak of the store leaks no token)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log: who did what, to whom, when and why.

    ``actor`` is ``host``, ``admin``, ``moderator:<label>`` or ``auto`` (a
    pipeline verdict).  ``text`` is a copy of the comment concerned (None once
    erased or expired); ``id`` is assigned by the store.
    """

    broadcast_id: str
    actor: str
    action: str
    ts: float = field(default_factory=time.time)
    viewer_id: str | None = None
    comment_id: str | None = None
    text: str | None = None
    reason: str | None = None
    filter: str | None = None
    detail: dict[str, Any] | None = None
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "AuditEntry":
        fields: dict[str, Any] = {k: doc.get(k) for k in _AUDIT_FIELDS if k in doc}
        return cls(**fields)


_AUDIT_FIELDS = ("broadcast_id", "actor", "action", "ts", "viewer_id", "comment_id", "text", "reason", "filter",
                 "detail", "id")


@dataclass(frozen=True, slots=True)
class ModeratorGrant:
    id: str
    broadcast_id: str
    label: str
    created_at: float
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ArchivedComment:
    """A comment as the moderation step saw it (every verdict), kept for the right of access."""

    viewer_id: str
    broadcast_id: str
    ts: float
    text: str
    verdict: str
    shown_text: str | None = None
    filter: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "ArchivedComment":
        return cls(**doc)


class ModerationStore(Protocol):
    """Shared moderation state.  Every method may raise the backend's I/O errors."""

    retention: float

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def get_settings(self, broadcast_id: str) -> dict[str, Any] | None: ...
    async def put_settings(self, broadcast_id: str, settings: dict[str, Any]) -> None: ...

    async def legacy_bans(self) -> list[BanRecord]:
        """Active bans a store from before kept (they live in the chat state now); the node hands
        them to the chat at start (``moderation_api``), then drops them here."""
    async def drop_legacy_bans(self) -> None: ...

    async def token_epoch(self, broadcast_id: str) -> int:
        """The broadcast's viewer-token epoch (0 until first raised)."""
    async def raise_token_epoch(self, broadcast_id: str) -> int:
        """Add one to the epoch, atomically; returns the new epoch."""

    async def add_grant(self, grant: ModeratorGrant, token_hash: str) -> None: ...
    async def find_grant(self, token_hash: str) -> ModeratorGrant | None: ...
    async def list_grants(self, broadcast_id: str) -> list[ModeratorGrant]: ...
    async def delete_grant(self, broadcast_id: str, grant_id: str) -> bool: ...

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Store ``entry``; returns it with its id (increasing per broadcast)."""
    async def list_audit(self, broadcast_id: str, after: int = 0, limit: int = 100) -> list[AuditEntry]:
        """Entries with id > ``after``, oldest first, at most ``limit`` (the newest ones)."""
    async def scrub_audit_text(self, viewer_id: str) -> int:
        """Forget the comment text of every audit entry about ``viewer_id``; how many changed."""

    async def archive_comment(self, comment: ArchivedComment) -> None:
        """Store ``comment``; returns once it is written (after those queued before it)."""
    async def queue_archive(self, comment: ArchivedComment) -> None:
        """Queue ``comment`` for the next batch write and return (waits only while the bounded
        queue is full).  Reads of the archive and ``close`` write the queue first."""
    async def viewer_comments(self, viewer_id: str) -> list[ArchivedComment]:
        """Everything archived for ``viewer_id`` within the retention, oldest first."""
    async def erase_viewer_comments(self, viewer_id: str) -> int: ...
    async def erase_broadcast_comments(self, broadcast_id: str) -> int:
        """Delete every archived comment of ``broadcast_id`` (its recording was deleted); how many."""

    def shared_limits(self) -> "SharedLimits":
        """The per-viewer limits every node must agree on, kept where every node sees them."""


def open_store(redis_url: str = "", data_dir: Path | None = None, *,
               retention: float = 7 * 24 * 3600.0, prefix: str = "onair:mod:", redis: Any = None) -> ModerationStore:
    """The store for this node (not opened yet: ``await store.open()``); ``redis``: a
    ``redis.asyncio.Redis`` client to share (its owner closes it) instead of one of the store's own."""
    if redis_url:
        from .store_redis import RedisModerationStore
        return RedisModerationStore(redis_url, prefix=prefix, retention=retention, redis=redis)
    if data_dir is None:
        raise ValueError("the embedded moderation store needs a data directory")
    from .store_sqlite import SqliteModerationStore
    return SqliteModerationStore(Path(data_dir) / "moderation.db", retention=retention)
