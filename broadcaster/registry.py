"""The broadcasts registry: what a broadcast is and where its metadata lives.

Two stores share one async interface: SQLite under the data dir (the embedded
default, one node) and Redis (``broadcaster.registry_redis``, shared by every
node of a cluster).  Secrets are generated here and compared in constant time.
A host token is kept only as its SHA-256 (like moderator tokens): the API
shows it once, when it is created or rotated.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

from broadcaster.sqlite_file import SqliteFile


class Status(str, enum.Enum):
    IDLE = "idle"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    ENDED = "ended"


class Visibility(str, enum.Enum):
    PUBLIC = "public"
    RESTRICTED = "restricted"


@dataclass(frozen=True)
class Broadcast:
    id: str
    title: str
    visibility: Visibility
    stream_key: str
    #: SHA-256 (hex) of the host token; the token itself is never stored
    host_token_hash: str
    status: Status = Status.IDLE
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    #: base URL of the node ingesting it (multi-node: HLS stays on that node)
    origin: str = ""
    description: str = ""
    #: when the host means to go live (Unix seconds; the watch page counts down to it), or None
    scheduled_start: float | None = None
    #: short hash of the poster JPEG (``broadcaster/studio/posters.py``), "" without one
    poster: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["visibility"] = self.visibility.value
        data["status"] = self.status.value
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Broadcast":
        data = json.loads(raw)
        if "host_token" in data:  # stored in clear by an older version
            data["host_token_hash"] = hash_token(data.pop("host_token"))
        data["visibility"] = Visibility(data["visibility"])
        data["status"] = Status(data["status"])
        return cls(**data)


def new_broadcast_id(visibility: Visibility = Visibility.PUBLIC) -> str:
    """A public broadcast's id is short (it is shared anyway); a restricted one's is 128 random bits,
    so it cannot be guessed (hex: a stream key splits on ``_``)."""
    return secrets.token_hex(16 if visibility is Visibility.RESTRICTED else 6)


def new_stream_key(broadcast_id: str) -> str:
    # The id is part of the key so lookups need no search over secrets; the
    # random part is compared in constant time.
    return f"live_{broadcast_id}_{secrets.token_urlsafe(24)}"


def new_host_token() -> str:
    return "host_" + secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """What is kept of a host token: its SHA-256, hex (a leak of the store leaks no token)."""
    return hashlib.sha256(token.encode()).hexdigest()


def host_token_matches(broadcast: Broadcast, token: str) -> bool:
    return hmac.compare_digest(broadcast.host_token_hash, hash_token(token))


def broadcast_id_from_key(stream_key: str) -> str | None:
    parts = stream_key.split("_", 2)
    if len(parts) != 3 or parts[0] != "live" or not parts[1]:
        return None
    return parts[1]


def secret_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


class BroadcastStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def create(self, broadcast: Broadcast) -> None: ...
    async def get(self, broadcast_id: str) -> Broadcast | None: ...
    async def list(self) -> list[Broadcast]: ...
    async def put(self, broadcast: Broadcast) -> None: ...
    async def delete(self, broadcast_id: str) -> bool: ...


class SqliteBroadcastStore:
    """Broadcast metadata in ``<data_dir>/onair.db``; each call runs in a thread."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, "CREATE TABLE IF NOT EXISTS broadcasts "
                                      "(id TEXT PRIMARY KEY, created_at REAL, doc TEXT NOT NULL)")
        self._run = self._file.rows

    async def open(self) -> None:
        await self._file.open()

    async def close(self) -> None:
        await self._file.close()

    async def create(self, broadcast: Broadcast) -> None:
        await self._run("INSERT INTO broadcasts (id, created_at, doc) VALUES (?, ?, ?)",
                        (broadcast.id, broadcast.created_at, broadcast.to_json()))

    async def get(self, broadcast_id: str) -> Broadcast | None:
        rows = await self._run("SELECT doc FROM broadcasts WHERE id = ?", (broadcast_id,))
        return Broadcast.from_json(rows[0][0]) if rows else None

    async def list(self) -> list[Broadcast]:
        rows = await self._run("SELECT doc FROM broadcasts ORDER BY created_at")
        return [Broadcast.from_json(r[0]) for r in rows]

    async def put(self, broadcast: Broadcast) -> None:
        await self._run("INSERT OR REPLACE INTO broadcasts (id, created_at, doc) VALUES (?, ?, ?)",
                        (broadcast.id, broadcast.created_at, broadcast.to_json()))

    async def delete(self, broadcast_id: str) -> bool:
        existed = await self.get(broadcast_id) is not None
        await self._run("DELETE FROM broadcasts WHERE id = ?", (broadcast_id,))
        return existed


def make_broadcast(title: str, visibility: Visibility, origin: str = "", *, description: str = "",
                   scheduled_start: float | None = None) -> tuple[Broadcast, str]:
    """A new broadcast and its host token (the broadcast keeps only the token's hash)."""
    broadcast_id = new_broadcast_id(visibility)
    host_token = new_host_token()
    return Broadcast(id=broadcast_id, title=title, visibility=visibility,
                     stream_key=new_stream_key(broadcast_id), host_token_hash=hash_token(host_token),
                     created_at=time.time(), origin=origin, description=description,
                     scheduled_start=scheduled_start), host_token


def with_status(broadcast: Broadcast, status: Status) -> Broadcast:
    now = time.time()
    if status is Status.LIVE and broadcast.started_at is None:
        return replace(broadcast, status=status, started_at=now)
    if status is Status.ENDED:
        return replace(broadcast, status=status, ended_at=now)
    return replace(broadcast, status=status)
