"""In-process bus: the embedded default for a single node (no external service).

Same semantics as the Redis backend, held in dicts: seq numbers start from the
clock (like Redis' after a restart) so they keep growing across node restarts.
Comments held for review are also written to ``held_path`` (when given) so a
moderator can approve them after a node restart; the rest is in memory only.
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

from broadcaster.bus.base import DEFAULT_QUEUE, Banned, Held, Subscription
from broadcaster.datadir import read_json, write_private

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
                 held_path: Path | None = None) -> None:
        self.history_size = history_size
        self._secret_path = secret_path
        self._held_path = held_path
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._seq: dict[str, int] = {}
        self._history: dict[str, deque[dict[str, Any]]] = {}
        self._removed: dict[str, set[str]] = defaultdict(set)
        self._reactions: dict[str, dict[str, int]] = defaultdict(dict)
        self._bans: dict[tuple[str, str], float | None] = {}
        self._held: dict[str, dict[str, Held]] = defaultdict(dict)
        self._pinned: dict[str, dict[str, Any]] = {}
        self._viewers: dict[str, dict[str, tuple[int, float]]] = defaultdict(dict)
        self._held_lock = asyncio.Lock()

    async def start(self) -> None:
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
        if self._held_path is None:
            return
        doc = {b: {k: h.comment for k, h in items.items()} for b, items in self._held.items() if items}
        data = json.dumps(doc).encode()
        async with self._held_lock:
            # atomic and durable: a crash leaves the old file or the new one, fsynced
            await asyncio.to_thread(write_private, self._held_path, data)

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

    async def post_comment(self, broadcast_id: str, channel: str, body: bytes, author_id: str | None = None) -> int:
        if author_id is not None and await self.is_banned(broadcast_id, author_id):
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

    async def add_reactions(self, broadcast_id: str, channel: str, counts: dict[str, int], node_id: str) -> dict[str, int]:
        totals = self._reactions[broadcast_id]
        for kind, n in counts.items():
            totals[kind] = totals.get(kind, 0) + n
        await self.publish(channel, json.dumps({"type": "reactions", "node": node_id, "counts": counts,
                                                "totals": totals}).encode())
        return dict(totals)

    async def reaction_totals(self, broadcast_id: str) -> dict[str, int]:
        return dict(self._reactions.get(broadcast_id, {}))

    async def ban(self, broadcast_id: str, viewer_id: str, seconds: float | None = None) -> None:
        self._bans[(broadcast_id, viewer_id)] = None if seconds is None else time.monotonic() + seconds

    async def unban(self, broadcast_id: str, viewer_id: str) -> None:
        self._bans.pop((broadcast_id, viewer_id), None)

    async def is_banned(self, broadcast_id: str, viewer_id: str) -> bool:
        key = (broadcast_id, viewer_id)
        if key not in self._bans:
            return False
        until = self._bans[key]
        if until is not None and until <= time.monotonic():
            del self._bans[key]
            return False
        return True

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

    async def report_viewers(self, node_id: str, counts: dict[str, int], ttl: float) -> None:
        expires = time.monotonic() + ttl
        for broadcast_id, count in counts.items():
            self._viewers[broadcast_id][node_id] = (count, expires)

    async def viewer_counts(self, broadcast_ids: list[str]) -> dict[str, int]:
        now = time.monotonic()
        return {b: sum(c for c, exp in self._viewers.get(b, {}).values() if exp > now) for b in broadcast_ids}

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
