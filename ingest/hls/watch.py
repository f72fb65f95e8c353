"""Where each live LL-HLS playlist is now, and waiting for it to move on.

The pipeline (the playlists' owner) calls :meth:`PlaylistWatch.publish` after
it has written a media playlist to disk; the origin's blocking playlist reload
(``_HLS_msn``/``_HLS_part``) and preload-hinted part requests wait here instead
of polling the file.  Everything runs on the node's event loop: publishing is
a dict update and waking the waiters of one playlist.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class PlaylistPosition:
    """The live edge of one media playlist, as last written."""

    #: media sequence number of the last *complete* segment (-1: none yet)
    last_msn: int
    #: media sequence number of the segment the newest part belongs to (the one being built,
    #: or ``last_msn`` right after a segment completed), and that part's index (-1: no parts)
    part_msn: int
    last_part: int
    #: part target duration and segment target duration (seconds) of the playlist
    part_target: float
    target_duration: float
    #: the URI of the part the playlist's preload hint names (None: no hint)
    hint_uri: str | None = None
    ended: bool = False

    @property
    def edge(self) -> tuple[int, int]:
        """(msn, part) of the newest part, for ordering requests against it."""
        return (self.part_msn, self.last_part)

    @property
    def newest_msn(self) -> int:
        """The MSN of the last segment in the playlist, counting the one being built."""
        return max(self.last_msn, self.part_msn)


class _Waiters:
    """The requests waiting for one playlist's next publish."""

    __slots__ = ("event", "count")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.count = 0


class PlaylistWatch:
    """Positions of the live playlists of this node, keyed by (broadcast, rendition)."""

    def __init__(self) -> None:
        self._positions: dict[tuple[str, str], PlaylistPosition] = {}
        self._changed: dict[tuple[str, str], _Waiters] = {}

    def publish(self, broadcast_id: str, rendition: str, position: PlaylistPosition) -> None:
        key = (broadcast_id, rendition)
        self._positions[key] = position
        waiters = self._changed.pop(key, None)
        if waiters is not None:
            waiters.event.set()

    def forget(self, broadcast_id: str) -> None:
        """The broadcast's pipeline is gone: wake its waiters (they re-read and give up)."""
        for key in [k for k in self._positions if k[0] == broadcast_id]:
            del self._positions[key]
        for key in [k for k in self._changed if k[0] == broadcast_id]:
            self._changed.pop(key).event.set()

    def sizes(self) -> tuple[int, int]:
        """(playlists with a position, playlists someone waits on): what this watch keeps."""
        return len(self._positions), len(self._changed)

    def position(self, broadcast_id: str, rendition: str) -> PlaylistPosition | None:
        return self._positions.get((broadcast_id, rendition))

    def waiting(self, broadcast_id: str, rendition: str) -> int:
        """How many callers are waiting in :meth:`changed` for the playlist's next publish."""
        waiters = self._changed.get((broadcast_id, rendition))
        return waiters.count if waiters is not None else 0

    async def changed(self, broadcast_id: str, rendition: str, timeout: float) -> bool:
        """Wait until the playlist is published again (True) or ``timeout`` passes (False)."""
        key = (broadcast_id, rendition)
        waiters = self._changed.get(key)
        if waiters is None:
            waiters = self._changed[key] = _Waiters()
        waiters.count += 1
        try:
            # asyncio.timeout, not wait_for: no extra task per waiter, one loop turn less to wake
            async with asyncio.timeout(timeout):
                await waiters.event.wait()
        except TimeoutError:
            return False
        finally:
            waiters.count -= 1
            # the last waiter to time out drops the event: a playlist nobody waits for keeps none
            if waiters.count == 0 and self._changed.get(key) is waiters:
                del self._changed[key]
        return True
