"""The bounded queue between the ingest and one target's connection (pure, no I/O).

The ingest pushes every unit of the broadcast (never waits); the target's task
takes them.  Rules, MediaMTX's reader ring in spirit:

* a connection starts from a keyframe: until one arrives, video and audio are
  dropped (sequence headers are kept aside, see :attr:`configs`, and sent first);
* a queue that holds more than ``max_lag_ms`` of media or ``max_bytes`` (the
  destination reads slower than real time) is emptied and waits for the next
  keyframe: the target loses a stretch, the ingest and every other target lose
  nothing; each such drop is counted (``drops``, ``dropped_units``);
* output timestamps start at 0 on each connection and stay monotonic across a
  publisher's reconnection to onair (:meth:`discontinuity`), whatever the
  publisher's own clock does.
"""

from __future__ import annotations

from collections import deque

from ingest.media import MediaKind, MediaUnit

DEFAULT_MAX_LAG_MS = 3000
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
#: the gap put between the last unit before a discontinuity and the first after it
_STEP_MS = 40


class ForwardQueue:
    def __init__(self, *, max_lag_ms: int = DEFAULT_MAX_LAG_MS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_lag_ms = max_lag_ms
        self.max_bytes = max_bytes
        self._items: deque[tuple[MediaUnit, int]] = deque()
        self._bytes = 0
        #: latest sequence headers of the broadcast by kind (sent first on every connection)
        self.configs: dict[MediaKind, MediaUnit] = {}
        #: units are taken only while a connection is publishing
        self.open = False
        self._waiting_keyframe = True
        self._offset: int | None = None  # output ts = source dts + offset
        self._last_out = -_STEP_MS
        self._floor = 0
        self.drops = 0
        self.dropped_units = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def waiting_keyframe(self) -> bool:
        return self._waiting_keyframe

    def start(self) -> None:
        """A new connection is publishing: timestamps from 0, from the next keyframe."""
        self._clear()
        self.open = True
        self._waiting_keyframe = True
        self._offset = None
        self._last_out = -_STEP_MS

    def stop(self) -> None:
        """The connection is gone: keep nothing until the next :meth:`start`."""
        self._clear()
        self.open = False

    def discontinuity(self) -> None:
        """The publisher's clock restarts (it reconnected to onair): continue after the last output."""
        self._waiting_keyframe = True
        self._offset = None

    def push(self, unit: MediaUnit) -> bool:
        """Take a unit from the ingest.  Returns True if something was queued (wake the sender)."""
        if unit.config:
            self.configs[unit.kind] = unit
            if not self.open or self._waiting_keyframe:
                return False  # sent with the keyframe that (re)starts the stream
            return self._append(unit, max(self._floor, unit.dts + self._offset))  # type: ignore[operator]
        if not self.open:
            return False
        if self._waiting_keyframe:
            if unit.kind is not MediaKind.VIDEO or not unit.keyframe:
                return False
            self._waiting_keyframe = False
            if self._offset is None:  # a new connection, or the publisher's clock restarted
                self._offset = self._last_out + _STEP_MS - unit.dts
            self._floor = unit.dts + self._offset
            for config in (self.configs.get(MediaKind.VIDEO), self.configs.get(MediaKind.AUDIO)):
                if config is not None:
                    self._append(config, self._floor)
        out = unit.dts + self._offset  # type: ignore[operator]
        if out < self._floor:
            return False  # audio from before the keyframe that (re)started the stream
        self._append(unit, out)
        if self._items and (out - self._items[0][1] > self.max_lag_ms or self._bytes > self.max_bytes):
            self.dropped_units += len(self._items)
            self.drops += 1
            self._clear()
            self._waiting_keyframe = True  # the offset stays: the destination sees the gap in time
        return True

    def pop(self) -> tuple[MediaUnit, int] | None:
        """The next unit and its output timestamp, or None."""
        if not self._items:
            return None
        unit, ts = self._items.popleft()
        self._bytes -= len(unit.data)
        return unit, ts

    # -- internals -------------------------------------------------------

    def _append(self, unit: MediaUnit, ts: int) -> bool:
        self._items.append((unit, ts))
        self._bytes += len(unit.data)
        if ts > self._last_out:
            self._last_out = ts
        return True

    def _clear(self) -> None:
        self._items.clear()
        self._bytes = 0
