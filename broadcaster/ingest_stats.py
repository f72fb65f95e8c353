"""The rolling figures of one publish (bitrate, frame rate, keyframe interval), rolled once a second.

The live manager counts every unit a publisher sends here; the API's ``live``
block, ``/metrics`` and the studio's health charts read them.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from ingest.media import MediaKind, MediaUnit


@dataclass
class IngestStats:
    """Rolling figures of the current publish, updated once a second."""

    protocol: str = ""
    remote: str = ""
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float = 0.0
    bitrate: float = 0.0
    #: seconds between the last two video keyframes (None before the second)
    keyframe_interval: float | None = None
    #: the last per-second bitrates, oldest first (the studio warns when they swing)
    recent_bitrates: deque[float] = field(default_factory=lambda: deque(maxlen=10))
    _last_keyframe: int | None = None
    _bytes: int = 0
    _frames: int = 0
    _window_start: float = field(default_factory=time.monotonic)

    def count(self, unit: MediaUnit) -> None:
        self._bytes += len(unit.data)
        if unit.kind is MediaKind.VIDEO:
            self.video_codec = unit.codec
            if not unit.config:
                self._frames += 1
                if unit.keyframe:
                    if self._last_keyframe is not None and unit.dts > self._last_keyframe:
                        self.keyframe_interval = (unit.dts - self._last_keyframe) / 1000
                    self._last_keyframe = unit.dts
        else:
            self.audio_codec = unit.codec

    def roll(self) -> None:
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed <= 0:
            return
        self.bitrate = self._bytes * 8 / elapsed
        self.recent_bitrates.append(self.bitrate)
        self.fps = self._frames / elapsed
        self._bytes = self._frames = 0
        self._window_start = now
