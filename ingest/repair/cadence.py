"""Video frames on the stream's frame grid (pure).

GStreamer's flvmux in live mode stamps a frame with the time it sends it: at
30 fps the steps come out 21, 43, 0, 33 ms, following the audio buffers and
the encoder's bursts.  Shown at those times, pictures bunch up and a player
drops some (judder); any consumer on a 1/30 s clock sees two frames on one
tick.  :class:`Cadence` puts each frame's decoding time in a slot of the
stream's frame grid (``origin + k * frame``, one grid from the first frame on,
so the worker can write the frames on an exact frame-rate clock,
:mod:`ingest.transcode.frameclock`): the nearest slot to its timestamp, or the
next free one when an earlier frame took it.  Slots a stream
skips stay empty, so dropped frames keep their gap; an encoder that keeps its
timestamps lands on its own slots, to the millisecond.

A stream whose timestamps are send times rather than capture times shows it:
a frame sent within a quarter of a frame of the previous one, or more frames
than slots for ``max_lead_ms`` (flvmux under load stamped 263 of 900 frames
0 ms after the previous one, ran seconds behind and flushed its backlog with
one timestamp at the end).  From such a frame on the grid counts frames
instead (frame ``k`` at ``origin + k * frame``, what ``ffmpeg -vsync cfr``
does); it goes back to the timestamps after ``calm`` frames without one once
the count and the timestamps agree again, or when they run more than
``resync_ms`` ahead of it (a real pause).  Frames never go more than
``resync_ms`` behind their timestamps: beyond that, they follow them.

The frame duration is the SPS's (VUI timing info, ``nominal_ms``), else the
stream's own average step, pauses left out, rounded to a common frame rate.
"""

from __future__ import annotations

from collections import deque

#: frame rates a measured rate is rounded to when it is within 1.5 % of one
_COMMON_RATES = (24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 50.0, 60000 / 1001, 60.0)
#: a step longer than this is a pause, not a frame duration (ms)
_PAUSE_MS = 250


class Cadence:
    def __init__(self, *, max_lead_ms: float = 500.0, window: int = 120, min_frames: int = 10, calm: int = 300,
                 resync_ms: float = 10_000.0) -> None:
        #: the frame duration the SPS gives (VUI timing info), if any
        self.nominal_ms: float | None = None
        self._max_lead = max_lead_ms
        self._recent: deque[int] = deque(maxlen=window)
        self._min_frames = min_frames
        self._frame: float | None = None  # the duration the slots are laid in
        self._origin = 0.0  # slot ``k`` is ``origin + k * frame``: one grid from the first frame on
        self._slot: int | None = None  # the slot of the previous frame
        self._last: int | None = None
        #: True when the last frame placed lies more than half a frame from its timestamp
        self.moved = False
        #: frames are counted, not placed by their timestamps (see the module docstring)
        self.counting = False
        self._calm = calm
        self._since_bunched = 0
        self._resync = resync_ms

    @property
    def frame_ms(self) -> float | None:
        """The grid's frame duration (ms): the SPS's, else the measured one; None until it is known.

        The SPS's is trusted: a stream under load sends faster and slower than its frame rate in turn
        (an encoder catching up), and any window of it measures the wrong rate.
        """
        return self.nominal_ms if self.nominal_ms is not None else self._measured()

    def _measured(self) -> float | None:
        if len(self._recent) < self._min_frames:
            return None
        steps = [min(b - a, _PAUSE_MS) for a, b in zip(self._recent, list(self._recent)[1:])]
        mean = sum(steps) / len(steps)
        if mean <= 0:
            return None
        rate = 1000 / mean
        common = min(_COMMON_RATES, key=lambda c: abs(c - rate))
        return 1000 / common if abs(common - rate) / common < 0.015 else mean

    def place(self, ts: int) -> int:
        """The decoding time (ms) of the frame sent at ``ts``, the next one in decoding order."""
        frame = self.frame_ms
        previous = self._recent[-1] if self._recent else None
        self._recent.append(ts)
        last = self._last
        self.moved = False
        if frame is None:
            out = ts if last is None else max(ts, last + 1)
        else:
            if previous is not None:
                self._watch(ts, previous, frame)
            if frame != self._frame:  # (new) slots, through the previous frame or this one
                self._frame, self._origin, self._slot = frame, float(ts if last is None else last), None
                if last is not None:
                    self._slot = 0
            out = self._slotted(ts, frame)
            if last is not None:
                out = max(out, last + 1)
            self.moved = abs(out - ts) > frame / 2
        self._last = out
        return out

    def _watch(self, ts: int, previous: int, frame: float) -> None:
        """Send-time stamps show as a frame within a quarter frame of the previous one."""
        if ts - previous < frame / 4:
            self.counting, self._since_bunched = True, 0
        elif self.counting:
            self._since_bunched += 1
            # back to the timestamps once they have been calm for a while and agree with the count again
            agree = self._last is not None and abs(self._last + frame - ts) <= frame / 2
            if self._since_bunched >= self._calm and agree:
                self.counting = False

    def _slotted(self, ts: int, frame: float) -> int:
        """The slot of ``ts``: its own, the next free one, or (counting) the one after the previous frame's."""
        own = round((ts - self._origin) / frame)
        if self._slot is None:
            slot = own
        elif self.counting:
            slot = self._slot + 1
            if ts - slot * frame > self._resync:
                slot = own  # a real pause: back to the timestamps
            elif slot * frame - ts > self._resync:
                # more frames than ``resync_ms`` of slots hold: they follow their timestamps that far behind
                out = round(ts + self._resync)
                self._slot = round((out - self._origin) / frame)
                return out
        else:
            slot = max(own, self._slot + 1)
            if slot * frame > ts + self._max_lead:
                # more frames than slots for ``max_lead_ms``: these timestamps are send times too
                self.counting, self._since_bunched = True, 0
        self._slot = slot
        out = round(self._origin + slot * frame)
        return ts if slot == own and abs(out - ts) <= 1 else out  # its own slot, as sent to the millisecond
