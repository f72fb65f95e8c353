"""Reserved chat names: "host", the moderators' names and a few more belong to their owners.

A name is *folded* before it is compared (``moderation.normalize``: case,
look-alike letters, leetspeak; then only letters and digits are kept), so
"H0st", "Ｈｏｓｔ", "h.o.s.t", "hoooost" and "Нost" (Cyrillic) all fold to "host".  The
reserved names of a broadcast are the fixed ``RESERVED`` ones plus the labels
of its moderators, which a ``ModeratorNames`` source gives (the moderation
store, plugged in by ``broadcaster/moderation_api.py``), cached per broadcast
for ``ttl`` seconds: a moderator granted on another node has their name within
that time, on this node at once (``invalidate``).

Only identities with a verified role (tokens the console gets) may use them;
the relay refuses a viewer's ``hello`` under one, and a comment from a viewer
whose name became reserved after it joined.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from moderation.normalize import normalize

log = logging.getLogger("onair.chat.names")

_REPEATS = re.compile(r"(.)\1+")

RESERVED = ("host", "admin", "administrator", "moderator", "mod", "onair", "system", "staff")


@functools.lru_cache(maxsize=16384)  # (a reconnect storm says the same names again)
def fold(name: str) -> str:
    """The form names are compared in: normalised, letters and digits only, repeats once ("hoooost": "host")."""
    return _REPEATS.sub(r"\1", "".join(ch for ch in normalize(name).text if ch.isalnum()))


class ModeratorNames(Protocol):
    async def moderator_names(self, broadcast_id: str) -> Sequence[str]: ...


class ReservedNames:
    """Is this name someone else's on this broadcast?  (bounded LRU cache of folded names)"""

    def __init__(self, source: ModeratorNames | None = None, ttl: float = 5.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.ttl = ttl
        self.clock = clock
        self._max = max_entries
        self._fixed = frozenset(fold(name) for name in RESERVED)
        self._cache: OrderedDict[str, tuple[frozenset[str], float]] = OrderedDict()
        #: reads of the source in flight: a join storm waits for one, not one each
        self._reading: dict[str, asyncio.Future[frozenset[str]]] = {}

    async def is_reserved(self, broadcast_id: str, name: str) -> bool:
        folded = fold(name)
        if not folded:
            return False
        return folded in self._fixed or folded in await self._moderators(broadcast_id)

    def invalidate(self, broadcast_id: str) -> None:
        self._cache.pop(broadcast_id, None)

    async def _moderators(self, broadcast_id: str) -> frozenset[str]:
        now = self.clock()
        hit = self._cache.get(broadcast_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        if self.source is None:
            return frozenset()
        reading = self._reading.get(broadcast_id)
        if reading is not None:
            return await asyncio.shield(reading)
        future: asyncio.Future[frozenset[str]] = asyncio.get_running_loop().create_future()
        self._reading[broadcast_id] = future
        try:
            names = frozenset(f for f in (fold(n) for n in await self.source.moderator_names(broadcast_id)) if f)
        except Exception as exc:
            # The fixed names still hold; the moderators' come back with the store.
            log.warning("moderator names of %s unavailable (%s); using the last known", broadcast_id, exc)
            names = hit[0] if hit is not None else frozenset()
        except BaseException:
            future.cancel()
            raise
        else:
            self._cache[broadcast_id] = (names, now + self.ttl)
            self._cache.move_to_end(broadcast_id)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        finally:
            del self._reading[broadcast_id]
        future.set_result(names)
        return names
