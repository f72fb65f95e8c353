"""Each node's copy of what gates playback: per broadcast, whether it is gated, its viewer-token
epoch and its banned viewers — so a request is checked without a round trip.

Loaded on first use (one load per broadcast however many requests wait for it), reloaded when older
than ``ttl`` (a ban reaches every node within it even if a notice is lost), and at once when a
notice on the bus says the broadcast's bans or epoch changed (``ACCESS_CHANNEL``; published by the
node that changed them, after the store write).  A reload that fails keeps the last state (a Redis
restart does not stop playback); with no state at all the request fails closed (``Unavailable``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from broadcaster.bus import GAP, PubSub
from broadcaster.playback.grants import PUBLIC, AccessState
from broadcaster.registry import Broadcast, Visibility

log = logging.getLogger("onair.playback")

#: the bus channel of access notices (payload: the broadcast id)
ACCESS_CHANNEL = "playback-access"


class Unavailable(Exception):
    """The broadcast's access state could not be loaded (the store is unreachable)."""


@dataclass(frozen=True)
class Revocations:
    epoch: int
    banned: frozenset[str]


@dataclass
class _Entry:
    state: AccessState | None
    loaded_at: float
    loading: asyncio.Future[AccessState] | None = None


class PlaybackAccess:
    def __init__(self, broadcast: Callable[[str], Awaitable[Broadcast | None]],
                 revocations: Callable[[str], Awaitable[Revocations]], *, ttl: float = 5.0,
                 max_entries: int = 10_000) -> None:
        self._broadcast = broadcast
        self._revocations = revocations
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        #: loads in flight (owned here: ``close`` cancels them)
        self._loads: set[asyncio.Task[None]] = set()
        self.reloads = 0

    async def state(self, broadcast_id: str) -> AccessState:
        entry = self._entries.get(broadcast_id)
        now = time.monotonic()
        if entry is not None and entry.state is not None and now - entry.loaded_at < self.ttl:
            return entry.state
        if entry is None:
            if len(self._entries) >= self.max_entries:
                self._evict(now)
            entry = self._entries[broadcast_id] = _Entry(None, 0.0)
        if entry.loading is None:
            entry.loading = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._load(broadcast_id, entry, entry.loading), name="playback-access-load")
            self._loads.add(task)
            task.add_done_callback(self._loads.discard)
        return await asyncio.shield(entry.loading)

    async def close(self) -> None:
        for task in list(self._loads):
            task.cancel()
        await asyncio.gather(*self._loads, return_exceptions=True)

    async def _load(self, broadcast_id: str, entry: _Entry, done: asyncio.Future[AccessState]) -> None:
        try:
            state = await self._fetch(broadcast_id)
        except asyncio.CancelledError:
            entry.loading = None
            done.cancel()
            raise
        except Exception as exc:  # the store is unreachable: keep what we had, if anything
            if entry.state is None:
                log.warning("playback access of %s unavailable: %s", broadcast_id, exc)
                result: AccessState | BaseException = Unavailable(str(exc))
            else:
                log.warning("playback access of %s not reloaded (keeping the last state): %s", broadcast_id, exc)
                result = entry.state
        else:
            entry.state, entry.loaded_at = state, time.monotonic()
            self.reloads += 1
            result = state
        entry.loading = None
        if isinstance(result, BaseException):
            self._entries.pop(broadcast_id, None)
            done.set_exception(result)
            done.exception()  # retrieved: every waiter raises it itself
        else:
            done.set_result(result)

    async def _fetch(self, broadcast_id: str) -> AccessState:
        broadcast = await self._broadcast(broadcast_id)
        if broadcast is not None and broadcast.visibility is Visibility.PUBLIC:
            return PUBLIC
        revoked = await self._revocations(broadcast_id)
        return AccessState(gated=True, epoch=revoked.epoch, banned=revoked.banned)

    def invalidate(self, broadcast_id: str | None = None) -> None:
        """Reload before the next use (one broadcast, or all)."""
        entries = self._entries.values() if broadcast_id is None else filter(None, [self._entries.get(broadcast_id)])
        for entry in entries:
            entry.loaded_at = float("-inf")

    def _evict(self, now: float) -> None:
        stale = [bid for bid, e in self._entries.items() if e.loading is None and now - e.loaded_at >= self.ttl]
        for bid in stale or list(self._entries)[: len(self._entries) // 2]:
            if self._entries[bid].loading is None:
                del self._entries[bid]

    async def follow(self, bus: PubSub) -> None:
        """Apply access notices from every node until cancelled (the owner's task)."""
        while True:
            try:
                async with bus.subscribe(ACCESS_CHANNEL, maxsize=1024) as notices:
                    # Notices published while we were not subscribed are lost: reload everything.
                    self.invalidate()
                    async for data in notices:
                        self.invalidate(None if data == GAP else data.decode(errors="replace"))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("playback access notices: subscription failed; retrying")
                await asyncio.sleep(1.0)


async def announce(bus: PubSub, broadcast_id: str) -> None:
    """Tell every node (this one too) to reload the broadcast's access state."""
    await bus.publish(ACCESS_CHANNEL, broadcast_id.encode())
