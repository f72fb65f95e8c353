"""Video timestamps on an exact frame-rate clock (pure).

The node's timeline is in milliseconds (the FLV clock), so 30 fps comes out as
steps of 33, 33 and 34 ms.  A player that guesses the frame rate from those
steps can guess 30000/1001 and then put two frames on one tick of its output
clock (ffmpeg did, for one replay in ten).  The repair stage puts video frames
on the stream's frame grid (multiples of the frame duration, rounded to the
millisecond, from the first frame on, :mod:`ingest.repair.cadence`); a
:class:`FrameClock` turns such a timestamp back into a whole number of frames
after the first one it sees, on a clock of ``rate`` x 1000 (30 fps: 1/30000 s,
1000 ticks a frame; 29.97 fps: 1/30000 s, 1001 ticks), so the mp4 track's
sample durations are exact.  A timestamp off the grid keeps its
millisecond value on the same clock.  Decoding times stay strictly increasing.
"""

from __future__ import annotations

from fractions import Fraction


class FrameClock:
    def __init__(self, rate: Fraction | None) -> None:
        self.rate = rate
        if rate is None or rate <= 0:
            self.timescale, self.frame_ticks = 1000, 0
        elif rate.denominator == 1:
            self.timescale, self.frame_ticks = rate.numerator * 1000, 1000
        else:
            self.timescale, self.frame_ticks = rate.numerator, rate.denominator
        self.time_base = Fraction(1, self.timescale)
        self._origin: int | None = None  # ms of the first time converted: frame 0 of the grid
        self._last_dts: int | None = None

    def ticks(self, ms: int) -> int:
        """A millisecond time on this clock: whole frames from the first one when it lies on the frame grid."""
        if self.rate is not None and self.frame_ticks:
            if self._origin is None:
                self._origin = ms
            frames = round((ms - self._origin) * self.rate / 1000)
            if abs(ms - self._origin - frames * 1000 / self.rate) <= 1:
                return round(Fraction(self._origin * self.timescale, 1000)) + frames * self.frame_ticks
        return round(Fraction(ms * self.timescale, 1000))

    def convert(self, dts_ms: int, pts_ms: int) -> tuple[int, int]:
        """(dts, pts) of one packet in decoding order; dts strictly after the previous one, pts not before it."""
        dts, pts = self.ticks(dts_ms), self.ticks(pts_ms)
        if self._last_dts is not None and dts <= self._last_dts:
            dts = self._last_dts + 1  # two times within a millisecond of one grid point
        self._last_dts = dts
        return dts, max(pts, dts)
