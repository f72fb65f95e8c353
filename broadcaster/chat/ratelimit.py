"""Token buckets: ``rate`` events per second, bursts up to ``burst``; several taken together."""

from __future__ import annotations

import time
from typing import Protocol


class Limit(Protocol):
    def take(self, now: float | None = None) -> bool: ...


class TokenBucket:
    __slots__ = ("rate", "burst", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = time.monotonic()

    def level(self, now: float | None = None) -> float:
        """The tokens there are at ``now`` (refilled up to the burst)."""
        now = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return self._tokens

    def take(self, now: float | None = None) -> bool:
        if self.level(now) >= 1:
            self._tokens -= 1
            return True
        return False

    def full_after(self) -> float:
        """Seconds an untouched bucket takes to be full again (then it is as good as a new one)."""
        return self.burst / self.rate if self.rate > 0 else 0.0


class AllOf:
    """Buckets taken together: an event costs one token of each, or (refused) of none."""
    __slots__ = ("buckets",)

    def __init__(self, *buckets: TokenBucket) -> None:
        self.buckets = buckets

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if all(bucket.level(now) >= 1 for bucket in self.buckets):
            for bucket in self.buckets:
                bucket._tokens -= 1
            return True
        return False
