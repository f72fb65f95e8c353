"""When a broadcast's next transcode worker starts after a crash (pure).

A crash costs a short back-off (0.1 s, doubling, at most 2 s).  Past
``max_restarts`` crashes within ``window`` seconds the worker is crashing over
and over: the pipeline then tries once every ``failing_retry`` seconds, for as
long as its publisher sends.  It never gives up, so a broadcast does not stop
producing HLS while media arrives (a pipeline that gave up after five crashes
left the broadcast ``live`` with nothing behind it).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Restart:
    delay: float
    #: crashing over and over (past max_restarts in the window)
    failing: bool
    #: this crash is the one that made it so (log it once)
    became_failing: bool
    #: crashes within the window, this one included
    recent: int


class RestartPolicy:
    def __init__(self, max_restarts: int, window: float, failing_retry: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_restarts = max_restarts
        self.window = window
        self.failing_retry = failing_retry
        self._clock = clock
        self._crashes: deque[float] = deque()
        self.failing = False

    def crashed(self) -> Restart:
        now = self._clock()
        self._crashes.append(now)
        while self._crashes and now - self._crashes[0] > self.window:
            self._crashes.popleft()
        recent = len(self._crashes)
        was_failing, self.failing = self.failing, recent >= self.max_restarts
        if self.failing:
            return Restart(self.failing_retry, True, not was_failing, recent)
        return Restart(min(0.1 * 2 ** (recent - 1), 2.0), False, False, recent)
