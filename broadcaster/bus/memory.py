"""In-process bus: the embedded default for a single node (no external service).

Same semantics as the Redis backend, held in dicts: seq numbers start from the
clock (like Redis' after a restart) so they keep growing across node restarts.
Comments held for review are also written to ``held_path`` (when given) so a
moderator can approve them after a node restart, and bans to ``bans_path`` so
they hold after one; the rest is in memory only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from broadcaster.bus.base import (DEFAULT_QUEUE, Admission, Banned, Held, PresenceCount, PresenceUpdate,
                                  Subscription)
from broadcaster.datadir import read_json, write_private
from moderation.bans import BanRecord

log = logging.getLogger("onair.bus.memory")


def _held_shape(doc: Any) -> bool:
    return isinstance(doc, dict) and all(isinstance(items, dict) and all(isinstance(c, dict) for c in items.values())
                                         for items in doc.values())


def seq_seed() -> int:
    # Milliseconds * 1000: later than any seq handed out before a restart as long
    # as a broadcast gets fewer than 1,000 comments per millisecond.
    return int(time.time() * 1000) * 1000


class MemoryBus:
    def __init__(self, history_size: int = 50, secret_path: Path | None = None,
                 held_path: Path | None = None, bans_path: Path | None = None) -> None:
        self.history_size = history_size
        self._secret_path = secret_path
        self._held_path = held_path
        self._bans_path = bans_path
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._seq: dict[str, int] = {}
        self._history: dict[str, deque[dict[str, Any]]] = {}
        self._removed: dict[str, set[str]] = defaultdict(set)
        self._reactions: dict[str, dict[str, int]] = defaultdict(dict)
        #: (broadcast, viewer) -> its ban (expiry: ``until``, epoch seconds)
        self._bans: dict[tuple[str, str], BanRecord] = {}
        #: (broadcast, address key) -> the ban that covers the address
        self._address_bans: dict[tuple[str, str], BanRecord] = {}
        self._addresses: dict[tuple[str, str], str] = {}
        self._held: dict[str, dict[str, Held]] = defaultdict(dict)
        self._pinned: dict[str, dict[str, Any]] = {}
        #: broadcast -> node -> (the identities it has viewers of, expiry)
        self._present: dict[str, dict[str, tuple[set[str], float]]] = defaultdict(dict)
        #: one file written at a time (the held queue's, the bans')
        self._file_lock = asyncio.Lock()

    async def start(self) -> None:
        await self._load_bans()
        if self._held_path is None:
            return
        # a damaged file is moved aside (logged) and the node starts without it
        doc = await asyncio.to_thread(read_json, self._held_path, "held comments")
        if doc is not None and not _held_shape(doc):
            log.error("held comments in %s have an unknown shape: ignored", self._held_path)
            doc = None
        for broadcast_id, items in (doc or {}).items():
            self._held[broadcast_id] = {k: Held(k, v) for k, v in items.items()}

    async def _save_held(self) -> None:
        if self._held_path is not None:
            await self._write_file(self._held_path, {b: {k: h.comment for k, h in items.items()}
                                                     for b, items in self._held.items() if items})

    async def _write_file(self, path: Path, doc: Any) -> None:
        data = json.dumps(doc).encode()
        async with self._file_lock:
            # atomic and durable: a crash leaves the old file or the new one, fsynced
            await asyncio.to_thread(write_private, path, data)

    async def _load_bans(self) -> None:
        if self._bans_path is None:
            return
        doc = await asyncio.to_thread(read_json, self._bans_path, "bans")
        if doc is not None and not isinstance(doc, list):
            log.error("bans in %s have an unknown shape: ignored", self._bans_path)
            doc = None
        now = time.time()
        for item in doc or ():
            try:
                record = BanRecord.from_dict(item)
            except ValueError as exc:
                log.error("a ban in %s is damaged (%s): skipped", self._bans_path, exc)
                continue
            if record.active(now):
                self._keep_ban(record)

    async def _save_bans(self) -> None:
        if self._bans_path is not None:
            await self._write_file(self._bans_path, [b.to_dict() for b in self._bans.values()])

    async def close(self) -> None:
        self._subs.clear()

    async def publish(self, channel: str, data: bytes) -> None:
        for sub in list(self._subs.get(channel, ())):
            sub.deliver(data)

    @asynccontextmanager
    async def subscribe(self, channel: str, maxsize: int = DEFAULT_QUEUE) -> AsyncIterator[Subscription]:
        sub = Subscription(channel, maxsize)
        self._subs[channel].add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]

    async def post_comment(self, broadcast_id: str, channel: str, body: bytes, author_id: str | None = None,
                           address: str | None = None) -> int:
        if author_id is not None and (await self.is_banned(broadcast_id, author_id)
                                      or (address and self._address_banned(broadcast_id, address))):
            raise Banned(author_id)
        seq = self._seq.get(broadcast_id) or seq_seed()
        seq += 1
        self._seq[broadcast_id] = seq
        data = b'{"seq":%d,' % seq + body[1:]
        history = self._history.setdefault(broadcast_id, deque(maxlen=self.history_size))
        history.append(json.loads(data))
        await self.publish(channel, data)
        return seq

    async def last_seq(self, broadcast_id: str) -> int:
        return self._seq.get(broadcast_id, 0)

    async def history(self, broadcast_id: str) -> list[dict[str, Any]]:
        removed = self._removed.get(broadcast_id, set())
        return [{**c, "removed": True} if c["id"] in removed else dict(c)
                for c in self._history.get(broadcast_id, ())]

    async def remove_comment(self, broadcast_id: str, comment_id: str) -> bool:
        known = any(c["id"] == comment_id for c in self._history.get(broadcast_id, ()))
        self._removed[broadcast_id].add(comment_id)
        return known

    async def forget_comments(self, broadcast_id: str, comment_ids: list[str]) -> int:
        history = self._history.get(broadcast_id)
        if not history:
            return 0
        gone = set(comment_ids)
        kept = [c for c in history if c["id"] not in gone]
        forgotten = len(history) - len(kept)
        self._history[broadcast_id] = deque(kept, maxlen=history.maxlen)
        return forgotten

    async def erase_history(self, broadcast_id: str) -> None:
        self._history.pop(broadcast_id, None)
        self._removed.pop(broadcast_id, None)
        self._reactions.pop(broadcast_id, None)
        self._pinned.pop(broadcast_id, None)

    async def add_reactions(self, broadcast_id: str, channel: str, counts: dict[str, int], node_id: str) -> dict[str, int]:
        totals = self._reactions[broadcast_id]
        for kind, n in counts.items():
            totals[kind] = totals.get(kind, 0) + n
        await self.publish(channel, json.dumps({"type": "reactions", "node": node_id, "counts": counts,
                                                "totals": totals}).encode())
        return dict(totals)

    async def reaction_totals(self, broadcast_id: str) -> dict[str, int]:
        return dict(self._reactions.get(broadcast_id, {}))

    async def ban(self, record: BanRecord) -> None:
        self._drop_ban(record.broadcast_id, record.viewer_id)  # a new ban replaces the old one, address and all
        self._keep_ban(record)
        await self._save_bans()

    def _keep_ban(self, record: BanRecord) -> None:
        self._bans[(record.broadcast_id, record.viewer_id)] = record
        if record.address_key:
            self._address_bans[(record.broadcast_id, record.address_key)] = record

    def _drop_ban(self, broadcast_id: str, viewer_id: str) -> BanRecord | None:
        record = self._bans.pop((broadcast_id, viewer_id), None)
        if record is not None and record.address_key:
            self._address_bans.pop((broadcast_id, record.address_key), None)
        return record

    async def unban(self, broadcast_id: str, viewer_id: str) -> bool:
        record = self._drop_ban(broadcast_id, viewer_id)
        if record is not None:
            await self._save_bans()
        return record is not None and record.active(time.time())

    async def bans(self, broadcast_id: str | None = None) -> list[BanRecord]:
        now = time.time()
        for key in [k for k, b in self._bans.items() if not b.active(now)]:
            self._drop_ban(*key)
        return sorted((b for b in self._bans.values() if broadcast_id is None or b.broadcast_id == broadcast_id),
                      key=lambda b: b.ts)

    def _ban_kind(self, broadcast_id: str, viewer_id: str) -> str | None:
        record = self._bans.get((broadcast_id, viewer_id))
        if record is None:
            return None
        if not record.active(time.time()):
            self._drop_ban(broadcast_id, viewer_id)
            return None
        return record.kind

    def _address_banned(self, broadcast_id: str, address: str) -> bool:
        record = self._address_bans.get((broadcast_id, address))
        if record is None:
            return False
        if not record.active(time.time()):
            self._drop_ban(record.broadcast_id, record.viewer_id)
            return False
        return True

    async def is_banned(self, broadcast_id: str, viewer_id: str) -> bool:
        return self._ban_kind(broadcast_id, viewer_id) is not None

    async def admit(self, broadcast_id: str, viewer_id: str, address: str) -> Admission:
        if address:
            self._addresses[(broadcast_id, viewer_id)] = address
        return Admission(self._ban_kind(broadcast_id, viewer_id),
                         bool(address) and self._address_banned(broadcast_id, address))

    async def admit_with_history(self, broadcast_id: str, viewer_id: str,
                                 address: str) -> tuple[Admission, list[dict[str, Any]]]:
        return await self.admit(broadcast_id, viewer_id, address), await self.history(broadcast_id)

    async def address_of(self, broadcast_id: str, viewer_id: str) -> str | None:
        return self._addresses.get((broadcast_id, viewer_id))

    async def hold(self, broadcast_id: str, held: Held) -> None:
        self._held[broadcast_id][held.id] = held
        await self._save_held()

    async def take_held(self, broadcast_id: str, held_id: str) -> Held | None:
        held = self._held[broadcast_id].pop(held_id, None)
        if held is not None:
            await self._save_held()
        return held

    async def list_held(self, broadcast_id: str) -> list[Held]:
        return list(self._held.get(broadcast_id, {}).values())

    async def set_pinned(self, broadcast_id: str, comment: dict[str, Any] | None) -> None:
        if comment is None:
            self._pinned.pop(broadcast_id, None)
        else:
            self._pinned[broadcast_id] = comment

    async def pinned(self, broadcast_id: str) -> dict[str, Any] | None:
        return self._pinned.get(broadcast_id)

    async def sync_presence(self, node_id: str, updates: list[PresenceUpdate],
                            ttl: float) -> dict[str, PresenceCount]:
        now = time.monotonic()
        out = {}
        for update in updates:
            nodes = self._present[update.broadcast_id]
            held = nodes.get(node_id)
            lost = update.expected and not update.full and (held is None or held[1] <= now)
            present = set() if update.full or held is None or held[1] <= now else held[0]
            present.update(update.added)
            present.difference_update(update.removed)
            nodes[node_id] = (present, now + ttl)
            for node, (_, expires) in list(nodes.items()):
                if expires <= now:
                    del nodes[node]
            everyone = set().union(*(ids for ids, _ in nodes.values()))
            out[update.broadcast_id] = PresenceCount(len(everyone), lost)
        return out

    async def cluster_secret(self, candidate: bytes) -> bytes:
        if self._secret_path is None:
            return candidate
        path = self._secret_path
        try:
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(candidate.hex() + "\n")
            return candidate
