"""Viewer state the access filter reads: bans and timeouts per broadcast.

The host-action API (built elsewhere) writes it; on many nodes it is backed
by shared storage and this in-memory form is the node's view.  Timeouts
expire by themselves; bans are explicit and bounded by `max_entries`.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["ViewerState"]


class ViewerState:
    """Bans and timeouts, keyed by (broadcast_id, viewer_id)."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._max = max_entries
        self._bans: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._timeouts: OrderedDict[tuple[str, str], float] = OrderedDict()

    def ban(self, broadcast_id: str, viewer_id: str) -> None:
        self._bans[(broadcast_id, viewer_id)] = None
        if len(self._bans) > self._max:
            self._bans.popitem(last=False)

    def unban(self, broadcast_id: str, viewer_id: str) -> None:
        self._bans.pop((broadcast_id, viewer_id), None)
        self._timeouts.pop((broadcast_id, viewer_id), None)

    def timeout(self, broadcast_id: str, viewer_id: str, until: float) -> None:
        """Mute the viewer until the clock reads `until` (same clock as the pipeline)."""
        self._timeouts[(broadcast_id, viewer_id)] = until
        if len(self._timeouts) > self._max:
            self._timeouts.popitem(last=False)

    def is_banned(self, broadcast_id: str, viewer_id: str) -> bool:
        return (broadcast_id, viewer_id) in self._bans

    def timed_out_until(self, broadcast_id: str, viewer_id: str, now: float) -> float | None:
        until = self._timeouts.get((broadcast_id, viewer_id))
        if until is None:
            return None
        if until <= now:
            del self._timeouts[(broadcast_id, viewer_id)]
            return None
        return until
