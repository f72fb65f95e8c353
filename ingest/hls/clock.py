"""The publisher's pace: when each media time was live, for delays and program dates.

The smallest ``arrival − pts`` seen recently is when media time 0 was "live"
(a unit that waited in a socket buffer arrives late, none arrives early).
From it come the publish-to-playlist delay (playlist write − the live moment
of the newest media it lists, so read gathering and transcoding count) and
each segment's ``#EXT-X-PROGRAM-DATE-TIME``, which lets players line the audio
rendition up with the video ones.
"""

from __future__ import annotations

import time
from collections import deque

#: publish-to-playlist delays kept for the figures (per pipeline)
DELAY_SAMPLES = 120
#: video unit arrival offsets kept for the publisher's pace (about 20 s at 30 fps)
ARRIVALS = 600
#: a change of arrival offset beyond this (seconds) means the timestamps restarted
PACE_JUMP = 2.0


class PaceClock:
    def __init__(self) -> None:
        #: monotonic arrival − pts/1000 of recent video units
        self._pace: deque[float] = deque(maxlen=ARRIVALS)
        #: epoch seconds of media time 0 for this worker generation, fixed at its first segment
        self._date_anchor: float | None = None
        self.delays: deque[float] = deque(maxlen=DELAY_SAMPLES)

    def arrived(self, pts: int) -> None:
        """A video unit with media time ``pts`` (ms) arrived now."""
        offset = time.monotonic() - pts / 1000
        if self._pace and abs(offset - self._pace[-1]) > PACE_JUMP:
            self._pace.clear()  # timestamps restarted (a reconnect): the old pace means nothing
        self._pace.append(offset)

    def restart(self) -> None:
        """A new worker generation: timestamps may have restarted."""
        self._date_anchor = None

    def record_delay(self, last_pts: int) -> None:
        """The playlist listing media up to ``last_pts`` was just written: how long after it was live."""
        if self._pace:
            live_at = min(self._pace) + last_pts / 1000
            self.delays.append(max(0.0, time.monotonic() - live_at))

    def program_date(self, first_pts: int | None) -> float | None:
        """Epoch seconds at which media time ``first_pts`` was live (``#EXT-X-PROGRAM-DATE-TIME``)."""
        if first_pts is None or not self._pace:
            return None
        if self._date_anchor is None:
            self._date_anchor = time.time() - time.monotonic() + min(self._pace)
        return self._date_anchor + first_pts / 1000

    def delay_figures(self) -> tuple[float | None, float | None, float | None]:
        """The newest delay, the median and the maximum of the recent ones (seconds; None before the first)."""
        if not self.delays:
            return None, None, None
        ordered = sorted(self.delays)
        return round(self.delays[-1], 3), round(ordered[len(ordered) // 2], 3), round(ordered[-1], 3)
