"""A bounded LRU mapping with per-entry expiry, for per-viewer state.

Chat state keyed by viewer must never grow without bound: the least
recently used entries are evicted past `max_entries`, and expired ones are
dropped when touched.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """LRU dict of at most `max_entries`; each entry expires at its own deadline."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max = max_entries
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.evictions = 0

    def get(self, key: K, now: float) -> V | None:
        item = self._data.get(key)
        if item is None:
            return None
        deadline, value = item
        if deadline <= now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def set(self, key: K, value: V, deadline: float) -> None:
        self._data[key] = (deadline, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)
            self.evictions += 1

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)
