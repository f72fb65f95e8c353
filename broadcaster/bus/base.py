"""The bus interface: per-broadcast pub/sub plus the chat state every node shares.

One typed ``Bus`` Protocol, two backends: ``MemoryBus`` (one node, the embedded
default) and ``RedisBus`` (many nodes).  Payloads are bytes; the chat relay
decides what they mean.  A subscription is a bounded queue: when a reader falls
behind, the oldest message is dropped and counted (never unbounded growth).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from moderation.bans import BanRecord

log = logging.getLogger("onair.bus")

#: messages a subscription holds before it drops the oldest
DEFAULT_QUEUE = 4096
#: the message a subscription yields after a reconnection (see ``notify_gap``)
GAP = b""


class BusError(Exception):
    """Root of the bus errors."""


class BusUnavailable(BusError):
    """The backend cannot be reached right now (e.g. Redis is restarting)."""


class Banned(BusError):
    """``post_comment`` refused the comment: its author is banned from the broadcast."""


class Subscription:
    """Messages of one channel for one reader: bounded, drop-oldest, counted."""

    def __init__(self, channel: str, maxsize: int = DEFAULT_QUEUE) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize)
        self.dropped = 0

    def deliver(self, data: bytes) -> None:
        """Called by the backend; never blocks."""
        if self._queue.full():
            # Drop the oldest: a chat reader wants the newest messages, and the
            # relay backfills comments from history when it sees a hole in seq.
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("subscription %s: reader too slow, %d messages dropped", self.channel, self.dropped)
        self._queue.put_nowait(data)

    def notify_gap(self) -> None:
        """The backend resubscribed after losing its connection: messages published
        meanwhile may be missing.  Readers see an empty message (``GAP``), never a
        valid payload, and backfill from history."""
        self.deliver(GAP)

    async def get(self) -> bytes:
        return await self._queue.get()

    def get_nowait(self) -> bytes | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        return await self._queue.get()


@dataclass(frozen=True)
class Held:
    """A comment waiting for a moderator's approval."""
    id: str
    comment: dict[str, Any]


@dataclass(frozen=True)
class Admission:
    """What the shared state says about a viewer joining a broadcast."""
    #: "ban" (until unbanned), "timeout" (until it expires) or None
    ban: str | None = None
    #: the viewer's network address is banned from the broadcast
    address_banned: bool = False


@dataclass(frozen=True)
class PresenceUpdate:
    """This node's change to the identities it has viewers of, for one broadcast."""
    broadcast_id: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    #: ``added`` is the whole set (first report, or after the shared copy was lost)
    full: bool = False
    #: the node believes its shared set is not empty (so finding it gone means it was lost)
    expected: bool = False


@dataclass(frozen=True)
class PresenceCount:
    #: distinct identities with a socket on any live node
    viewers: int
    #: this node's set was gone (e.g. Redis restarted): report it whole next time
    lost: bool = False


class PubSub(Protocol):
    """Channels: bytes published to every subscriber on every node.  May raise ``BusUnavailable``."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, channel: str, data: bytes) -> None: ...
    def subscribe(self, channel: str, maxsize: int = DEFAULT_QUEUE) -> AbstractAsyncContextManager[Subscription]: ...


class ChatState(Protocol):
    """The chat's shared state: comment order and history, reactions, bans and the held queue,
    presence, the cluster secret.  The steps that change state and tell every node (a post,
    reactions) publish on the same connection.  Every method may raise ``BusUnavailable``."""

    # --- comments: ordering + history -------------------------------------------
    async def post_comment(self, broadcast_id: str, channel: str, body: bytes, author_id: str | None = None,
                           address: str | None = None) -> int:
        """Atomically: give the comment the next ``seq`` of its broadcast, append it
        to the history and publish it.  ``body`` is a JSON object without ``seq``;
        the stored and published form is ``{"seq": N, ...body}``.  Returns N.
        With ``author_id`` (and ``address``), the comment of a banned author (or
        from a banned address) is not posted: ``Banned`` is raised (the ban check
        and the post are one step, one round trip)."""
    async def last_seq(self, broadcast_id: str) -> int: ...
    async def history(self, broadcast_id: str) -> list[dict[str, Any]]:
        """The retained comments in seq order, removed ones included (marked ``removed``)."""
    async def remove_comment(self, broadcast_id: str, comment_id: str) -> bool: ...
    async def forget_comments(self, broadcast_id: str, comment_ids: list[str]) -> int:
        """Delete these comments from the stored history altogether (right of erasure:
        their text and author leave the store, not only the screens).  Returns how many."""
    async def erase_history(self, broadcast_id: str) -> None:
        """Forget the broadcast's comments, reaction totals and pinned comment."""

    # --- reactions ---------------------------------------------------------------
    async def add_reactions(self, broadcast_id: str, channel: str, counts: dict[str, int], node_id: str) -> dict[str, int]:
        """Atomically add ``counts`` to the totals and publish one ``reactions``
        message ``{"type": "reactions", "node", "counts", "totals"}``; returns totals."""
    async def reaction_totals(self, broadcast_id: str) -> dict[str, int]: ...

    # --- moderation state --------------------------------------------------------
    async def ban(self, record: BanRecord) -> None:
        """Keep the one record of a ban (``until`` None) or timeout, replacing the viewer's earlier
        one; with ``address_key`` (from ``chat.quotas.address_key``) it covers every viewer from
        that address, for as long."""
    async def unban(self, broadcast_id: str, viewer_id: str) -> bool:
        """Lift the viewer's ban or timeout and the address ban that came with it; whether there was one."""
    async def bans(self, broadcast_id: str | None = None) -> list[BanRecord]:
        """The active bans and timeouts (of one broadcast, or of all), oldest first."""
    async def is_banned(self, broadcast_id: str, viewer_id: str) -> bool: ...
    async def admit(self, broadcast_id: str, viewer_id: str, address: str) -> Admission:
        """Check a joining viewer against the bans and remember its address key (for an
        address ban later), in one step."""
    async def admit_with_history(self, broadcast_id: str, viewer_id: str,
                                 address: str) -> tuple[Admission, list[dict[str, Any]]]:
        """``admit`` and ``history`` together: what a join needs, in one round trip."""
    async def address_of(self, broadcast_id: str, viewer_id: str) -> str | None:
        """The address key the viewer last joined from (kept for the chat retention)."""
    async def hold(self, broadcast_id: str, held: Held) -> None: ...
    async def take_held(self, broadcast_id: str, held_id: str) -> Held | None: ...
    async def list_held(self, broadcast_id: str) -> list[Held]: ...
    async def set_pinned(self, broadcast_id: str, comment: dict[str, Any] | None) -> None: ...
    async def pinned(self, broadcast_id: str) -> dict[str, Any] | None: ...

    # --- presence ---------------------------------------------------------------
    async def sync_presence(self, node_id: str, updates: list[PresenceUpdate],
                            ttl: float) -> dict[str, PresenceCount]:
        """Apply this node's changes to the identities it has viewers of (kept ``ttl``
        seconds unless reported again) and count, per broadcast, the distinct
        identities on every live node: one viewer with three sockets, or on two nodes, is one."""

    # --- cluster secret -----------------------------------------------------------
    async def cluster_secret(self, candidate: bytes) -> bytes:
        """The secret shared by every node: ``candidate`` if none was set yet."""


class Bus(PubSub, ChatState, Protocol):
    """Both, over one backend (``MemoryBus`` in one process, ``RedisBus`` over one connection pool).
    Parts that only publish or listen take a ``PubSub``; parts that only keep state, a ``ChatState``."""

