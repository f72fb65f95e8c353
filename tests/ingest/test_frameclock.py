"""ingest.transcode.frameclock: millisecond times on the frame grid become exact frame times."""

from __future__ import annotations

from fractions import Fraction

import pytest

from ingest.transcode.frameclock import FrameClock


@pytest.mark.parametrize("rate, timescale, frame", [(Fraction(30), 30000, 1000), (Fraction(30000, 1001), 30000, 1001),
                                                    (Fraction(25), 25000, 1000), (Fraction(60000, 1001), 60000, 1001)])
def test_frames_on_the_grid_are_whole_frames(rate: Fraction, timescale: int, frame: int) -> None:
    clock = FrameClock(rate)
    assert (clock.timescale, clock.frame_ticks, clock.time_base) == (timescale, frame, Fraction(1, timescale))
    start = 1234  # the grid starts wherever the first frame is
    sent = [round(start + i * 1000 / rate) for i in range(3000)]  # ms, as the FLV clock carries them
    ticks = [clock.convert(ms, ms)[0] for ms in sent]
    assert {b - a for a, b in zip(ticks, ticks[1:])} == {frame}


def test_b_frames_and_times_off_the_grid() -> None:
    clock = FrameClock(Fraction(30))
    # decoding and presentation times of x264 with B-frames, then a frame 10 ms off the grid
    assert clock.convert(0, 67) == (0, 2000)
    assert clock.convert(33, 167) == (1000, 5000)
    assert clock.convert(67, 100) == (2000, 3000)
    assert clock.convert(110, 110) == (3300, 3300)  # off the grid: its millisecond time


def test_decoding_times_stay_increasing() -> None:
    clock = FrameClock(Fraction(30))
    assert clock.convert(0, 0) == (0, 0)
    assert clock.convert(1, 1) == (1, 1)  # two times within a millisecond of one grid point
    assert clock.convert(33, 33)[0] == 1000


def test_no_rate_is_milliseconds() -> None:
    clock = FrameClock(None)
    assert clock.time_base == Fraction(1, 1000) and clock.convert(33, 40) == (33, 40)
