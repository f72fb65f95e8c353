"""Presence by identity: how many distinct viewers a broadcast has, across nodes.

A viewer is an identity (its viewer id), not a socket: three tabs of one
viewer, or one viewer on two nodes, count once.  This node keeps, per
broadcast, the sockets it has of each identity; once per presence interval
it reports the identities that came and went (``PresenceUpdate``, the whole
set after a start or when the shared copy was lost) and gets back the
distinct count over every live node (``Bus.sync_presence``).  A node that
stops reporting drops out after the presence TTL.
"""

from __future__ import annotations

from collections import defaultdict

from broadcaster.bus import ChatState, PresenceUpdate


class Presence:
    def __init__(self) -> None:
        #: broadcast -> identity -> its sockets on this node
        self._sockets: dict[str, dict[str, int]] = defaultdict(dict)
        self._added: dict[str, set[str]] = defaultdict(set)
        self._removed: dict[str, set[str]] = defaultdict(set)
        #: broadcasts whose whole set is reported next (never reported, or lost)
        self._full: set[str] = set()
        #: broadcasts whose shared set holds something as far as this node knows
        self._reported: set[str] = set()

    def join(self, broadcast_id: str, viewer_id: str) -> None:
        here = self._sockets[broadcast_id]
        if broadcast_id not in self._reported and not here:
            self._full.add(broadcast_id)
        count = here.get(viewer_id, 0)
        here[viewer_id] = count + 1
        if count == 0:
            self._removed[broadcast_id].discard(viewer_id)
            self._added[broadcast_id].add(viewer_id)

    def leave(self, broadcast_id: str, viewer_id: str) -> None:
        here = self._sockets.get(broadcast_id)
        if not here or viewer_id not in here:
            return
        if here[viewer_id] > 1:
            here[viewer_id] -= 1
            return
        del here[viewer_id]
        self._added[broadcast_id].discard(viewer_id)
        self._removed[broadcast_id].add(viewer_id)

    def local(self, broadcast_id: str) -> int:
        """Distinct identities with a socket on this node."""
        here = self._sockets.get(broadcast_id)
        return len(here) if here else 0

    def has(self, broadcast_id: str, viewer_id: str) -> bool:
        here = self._sockets.get(broadcast_id)
        return here is not None and viewer_id in here

    def forget(self, broadcast_id: str) -> None:
        """The broadcast has no room here any more (its set expires in the shared state)."""
        for table in (self._sockets, self._added, self._removed):
            table.pop(broadcast_id, None)
        self._full.discard(broadcast_id)
        self._reported.discard(broadcast_id)

    def updates(self, broadcast_ids: list[str]) -> list[PresenceUpdate]:
        """What to report for these broadcasts (and forget locally as pending)."""
        out = []
        for bid in broadcast_ids:
            here = self._sockets.get(bid, {})
            expected = bid in self._reported
            if bid in self._full:
                update = PresenceUpdate(bid, tuple(here), (), full=True, expected=expected)
            else:
                update = PresenceUpdate(bid, tuple(self._added.get(bid, ())), tuple(self._removed.get(bid, ())),
                                        expected=expected)
            self._added.pop(bid, None)
            self._removed.pop(bid, None)
            self._full.discard(bid)
            if here:
                self._reported.add(bid)
            else:
                self._reported.discard(bid)
            out.append(update)
        return out

    async def sync(self, bus: ChatState, node_id: str, broadcast_ids: list[str], ttl: float) -> dict[str, int]:
        """Report this node's changes; the distinct viewers of each broadcast across nodes."""
        updates = self.updates(broadcast_ids)
        try:
            counts = await bus.sync_presence(node_id, updates, ttl)
        except BaseException:
            for update in updates:
                self._full.add(update.broadcast_id)  # report whole once the bus is back
            raise
        for bid, count in counts.items():
            if count.lost:
                self._full.add(bid)
        return {bid: count.viewers for bid, count in counts.items()}
