"""The units waiting for a broadcast's transcode worker: a queue bounded in bytes.

Beyond ``max_bytes`` units are dropped (counted) until the next video
keyframe, so a slow worker costs the viewers a gap, never the node its memory.
Two markers travel in the same queue, in order with the units: ``END``
(``finish()``: EOF, flush, no new worker) and ``BREAK`` (EOF, flush, the next
worker starts fresh: a discontinuity).
"""

from __future__ import annotations

import asyncio
from collections import deque

from ingest.media import MediaKind, MediaUnit


class Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


END = Marker("end")      # finish(): EOF, flush, no new worker
BREAK = Marker("break")  # EOF, flush, next worker starts fresh (discontinuity)
Item = MediaUnit | Marker


class Backlog:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: deque[Item] = deque()
        #: bytes of the units queued
        self.pending_bytes = 0
        #: units dropped (over the bound, or lost while a worker restarts)
        self.dropped = 0
        self.overflowing = False
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def head(self) -> Item:
        return self._items[0]

    def admit(self, unit: MediaUnit) -> bool:
        """Count ``unit`` in if the bound allows (True: the caller pushes it); past the bound,
        drop it and every unit up to the next video keyframe."""
        is_key = unit.kind is MediaKind.VIDEO and unit.keyframe
        size = len(unit.data)
        if self.overflowing and not is_key:
            self.dropped += 1
            return False
        if self.pending_bytes + size > self.max_bytes:
            self.overflowing = True
            self.dropped += 1
            return False
        self.overflowing = False
        self.pending_bytes += size
        return True

    def push(self, item: Item) -> None:
        self._items.append(item)
        self._wake.set()

    def pop(self) -> Item:
        item = self._items.popleft()
        if isinstance(item, MediaUnit):
            self.pending_bytes -= len(item.data)
        return item

    async def wait(self) -> None:
        """Until something is queued."""
        while not self._items:
            self._wake.clear()
            await self._wake.wait()

    def clear(self) -> None:
        self._items.clear()
        self.pending_bytes = 0
