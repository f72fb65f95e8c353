"""Presentation times of a stream with B-frames, from the display order (pure).

A stream with B-frames is sent in decoding order; each frame's presentation
time is its decoding time plus a composition offset.  When an encoder or muxer
gets the offsets wrong (GStreamer's flvmux in live mode writes 0, or an offset
that shows a P-frame before the B-frames it precedes) the decoder hands out
pictures whose times go backwards, and libx264 and the muxers refuse them.

The display order is in the bitstream (the picture order count), so the times
can be rebuilt the way an encoder makes them: the frames' timestamps, sorted,
are the time grid ``T``; the frame decoded ``n``-th decodes at ``T[n]``, and the
frame shown ``k``-th is shown at ``T[k + depth]``, ``depth`` being the reorder
depth (how many frames a picture can be decoded ahead of its display; from the
SPS, grown when a picture arrives later than that).  Decoding and presentation
times then both increase strictly, and no picture is shown before it is
decoded.  For an encoder that got it right (x264 through ffmpeg) the result is
the times it sent.

A frame leaves once its presentation time is known, ``depth`` frames later:
the price is ``depth`` frames of delay, only for streams that can reorder.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: the largest reorder depth H.264 allows (max_num_reorder_frames <= max_dec_frame_buffering <= 16)
MAX_DEPTH = 16


@dataclass
class Timed(Generic[T]):
    item: T
    key: tuple[int, int]
    given: int  # the presentation time the publisher sent (timeline ms)
    dts: int | None = None
    pts: int | None = None
    #: False when the publisher's presentation time was not after the previous picture's in display order
    given_in_order: bool = True
    #: the timestamp the grid had to move 1 ms after the previous one to give this frame (a duplicate)
    dts_moved_from: int | None = None


class Reorderer(Generic[T]):
    def __init__(self, depth: int, after: int | None = None, place: Callable[[int], int] | None = None) -> None:
        """``after``: a presentation time every picture must come after (the previous stream's last);
        ``place``: applied to each value of the time grid, in increasing order (:mod:`.cadence`)."""
        self._place = place
        self.depth = max(0, min(depth, MAX_DEPTH))
        #: how often the depth had to grow (a picture arrived later than the depth allowed)
        self.grew = 0
        self._times: list[int] = []  # min-heap: timestamps not yet on the grid
        self._display: list[tuple[tuple[int, int], int, Timed[T]]] = []  # min-heap by display key
        self._decode: deque[Timed[T]] = deque()  # held frames in decoding order
        self._no_dts: deque[Timed[T]] = deque()  # held frames still without a decoding time
        self._counter = itertools.count()
        self._grid_last: int | None = None
        self._grid_steps: deque[int] = deque(maxlen=16)
        self._unassigned = 0  # grid values given to no picture (the first ``depth`` of them)
        self._shown_key: tuple[int, int] | None = None
        self._shown_given: int | None = None
        self._shown_pts = after

    @property
    def step(self) -> int:
        """The grid's usual step (ms): the median of the recent ones, at least 1."""
        steps = sorted(self._grid_steps)
        return max(steps[len(steps) // 2] if steps else 1, 1)

    def push(self, item: T, ts: int, key: tuple[int, int], given: int) -> list[Timed[T]]:
        """One frame in decoding order: its timestamp, display key (epoch, picture order) and sent pts."""
        frame = Timed(item, key, given)
        if self._shown_key is not None and key < self._shown_key and self.depth < MAX_DEPTH:
            self.depth += 1  # to be shown before a picture already shown: the depth was too small
            self.grew += 1
        heapq.heappush(self._times, ts)
        heapq.heappush(self._display, (key, next(self._counter), frame))
        self._decode.append(frame)
        self._no_dts.append(frame)
        while len(self._times) > self.depth:
            self._grid(heapq.heappop(self._times))
        return self._release()

    def flush(self) -> list[Timed[T]]:
        """Everything still held, the missing presentation times continuing the grid's pace."""
        while self._times:
            self._grid(heapq.heappop(self._times))
        step = self.step
        while self._display:
            self._grid_last = (self._grid_last if self._grid_last is not None else 0) + step
            self._show(self._grid_last)
        out = self._release()
        assert not self._decode
        return out

    def _grid(self, ts: int) -> None:
        """The next value of the time grid: the next frame's decoding time, a picture's presentation time."""
        frame = self._no_dts.popleft()
        if self._place is not None:
            ts = self._place(ts)
        if self._grid_last is not None:
            if ts <= self._grid_last:
                frame.dts_moved_from, ts = ts, self._grid_last + 1
            self._grid_steps.append(ts - self._grid_last)
        self._grid_last = ts
        frame.dts = ts
        if self._unassigned < self.depth:
            self._unassigned += 1
        elif self._display:
            self._show(ts)

    def _show(self, ts: int) -> None:
        key, _, frame = heapq.heappop(self._display)
        frame.pts = ts if self._shown_pts is None else max(ts, self._shown_pts + 1)
        self._shown_pts = frame.pts
        if self._shown_given is not None and frame.given <= self._shown_given:
            frame.given_in_order = False
        self._shown_key = key
        self._shown_given = frame.given

    def _release(self) -> list[Timed[T]]:
        out: list[Timed[T]] = []
        while self._decode and self._decode[0].dts is not None and self._decode[0].pts is not None:
            frame = self._decode.popleft()
            assert frame.dts is not None and frame.pts is not None
            if frame.pts < frame.dts:
                frame.pts = frame.dts  # only after the depth grew: the picture came later than it should
            out.append(frame)
        return out
