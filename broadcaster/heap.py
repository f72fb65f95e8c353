"""Keep a node's long-lived heap out of CPython's full garbage collections.

A node with 10,000 chat viewers holds about 700,000 objects the cyclic garbage
collector tracks (requests, sockets, viewers).  A full collection walks all of
them with the event loop stopped: about 0.45 s on the 2-core benchmark machine,
during which no viewer gets a batch and no HLS request is answered.  CPython
starts one whenever the objects that survived the young generations reach a
quarter of the old heap, so a crowd joining a broadcast pauses the node again
and again (ten full collections, 2.2 s, while 10,000 viewers connect).

``HeapFreezer`` moves whatever is alive into the permanent generation
(``gc.freeze()``, a constant-time list splice) every ``interval`` seconds, so
collections walk only what is newer than that.  Objects freed by reference
counting go as usual; what a freeze holds back is cyclic garbage that was alive
when frozen, mostly the remains of connections that have since closed.  So the
frozen heap is thawed (unfrozen, collected once, frozen again) when a quarter of
the connections seen since the last thaw have gone (``departures``, the same
proportion CPython uses), or when the process's resident memory has grown
``thaw_growth`` times since the last thaw, whichever comes first: one pause
where CPython would take several, and the memory held back stays bounded by a
factor of the live heap.  (Memory, not ``gc.get_freeze_count()``: counting the
frozen objects walks all of them, 70 ms at 10,000 viewers.)  Process-wide, so the process
entry point (``onair serve``) owns it, not an app (tests run many apps in one
process).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger("onair.heap")


def should_thaw(rss: int, rss_after_thaw: int, departed: int, connected: int, *, growth: float = 2.0,
                floor: int = 256 << 20, fraction: float = 0.25, min_departed: int = 1000) -> bool:
    """Whether to thaw: ``departed`` connections closed since the last thaw, ``connected`` open now,
    ``rss`` the resident memory now and just after the last thaw (bytes).

    Thaw when at least ``min_departed`` and a ``fraction`` of the connections seen since the last
    thaw have closed (their remains may be frozen garbage), or when memory has grown ``growth``
    times and past ``floor`` (garbage nobody counted)."""
    if departed >= min_departed and departed >= fraction * (departed + connected):
        return True
    return rss >= floor and rss >= growth * max(rss_after_thaw, 1)


def resident_bytes() -> int:
    """This process's resident memory (one small read of /proc; 0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class HeapFreezer:
    def __init__(self, interval: float = 1.0, *, departures: Callable[[], int] = lambda: 0,
                 connections: Callable[[], int] = lambda: 0, thaw_growth: float = 2.0, floor: int = 256 << 20,
                 min_departed: int = 1000, memory: Callable[[], int] = resident_bytes) -> None:
        """``departures``: connections closed since start (a counter); ``connections``: open now."""
        self.interval = interval
        self.departures = departures
        self.connections = connections
        self.thaw_growth = thaw_growth
        self.floor = floor
        self.min_departed = min_departed
        self.memory = memory
        self.thaws = 0
        #: objects frozen just after the last thaw (counted then only: counting walks them all)
        self.frozen_after_thaw = 0
        self.rss_after_thaw = 0
        self.departures_at_thaw = 0
        self._full_started = 0.0
        self._on_full: Callable[[float], None] = lambda seconds: None
        self._on_thaw: Callable[[], None] = lambda: None

    def register(self, registry: CollectorRegistry) -> None:
        """Export the freezer's work and every full collection's pause as Prometheus metrics."""
        frozen = Gauge("onair_gc_frozen_objects_at_thaw",
                       "Objects kept out of garbage collection (gc.freeze) just after the last thaw", registry=registry)
        thaws = Counter("onair_gc_thaws", "Thaws: frozen heap unfrozen and collected once", registry=registry)
        pauses = Histogram("onair_gc_full_collection_seconds", "Duration of full (generation 2) collections",
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=registry)
        frozen.set_function(lambda: self.frozen_after_thaw)
        self._on_full = pauses.observe
        self._on_thaw = thaws.inc

    def _gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._full_started = time.perf_counter()
        elif self._full_started:
            self._on_full(time.perf_counter() - self._full_started)
            self._full_started = 0.0

    def freeze(self) -> None:
        """One round: freeze what is alive, or thaw and collect once when garbage may have piled up."""
        gc.freeze()
        departed = self.departures() - self.departures_at_thaw
        rss = self.memory()
        if should_thaw(rss, self.rss_after_thaw, departed, self.connections(),
                       growth=self.thaw_growth, floor=self.floor, min_departed=self.min_departed):
            started = time.perf_counter()
            self.thaw()
            log.info("heap thaw (%d connections gone, %d MiB resident): %d objects stay frozen; %.3f s",
                     departed, rss >> 20, self.frozen_after_thaw, time.perf_counter() - started)

    def thaw(self) -> None:
        """Unfreeze, collect everything once, freeze the survivors."""
        gc.unfreeze()
        self._collect_and_freeze()
        self.thaws += 1
        self._on_thaw()

    def _collect_and_freeze(self) -> None:
        """Collect everything not frozen, freeze the survivors, and take the baseline the next
        thaw is measured from (counting frozen objects is affordable only right after a collection)."""
        gc.collect()
        gc.freeze()
        self.frozen_after_thaw = gc.get_freeze_count()
        self.rss_after_thaw = self.memory()
        self.departures_at_thaw = self.departures()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.freeze()

    async def cleanup_ctx(self, app: Any) -> AsyncIterator[None]:
        """aiohttp ``cleanup_ctx``: freeze the startup heap (imports, word lists, app), keep freezing
        while the app runs, and give everything back to the collector when it stops.  With
        ``interval`` 0 it only times the full collections CPython runs by itself."""
        gc.callbacks.append(self._gc_callback)
        task: asyncio.Task[None] | None = None
        if self.interval > 0:
            self._collect_and_freeze()
            task = asyncio.create_task(self.run(), name="heap-freezer")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                gc.unfreeze()
            gc.callbacks.remove(self._gc_callback)
