"""The heap freezer: survivors leave the full collections, frozen garbage is reclaimed at a thaw."""

from __future__ import annotations

import asyncio
import gc
import re
import weakref

import pytest
from prometheus_client import CollectorRegistry

from broadcaster.heap import HeapFreezer, resident_bytes, should_thaw


MiB = 1 << 20


@pytest.mark.parametrize("rss, after_thaw, departed, connected, thaw", [
    (300 * MiB, 200 * MiB, 0, 10_000, False),
    (300 * MiB, 200 * MiB, 999, 0, False),         # fewer departures than the minimum
    (300 * MiB, 200 * MiB, 2_000, 10_000, False),  # under a quarter of the connections seen since the thaw
    (300 * MiB, 200 * MiB, 2_500, 7_500, True),    # a quarter of them gone
    (399 * MiB, 200 * MiB, 0, 10_000, False),
    (400 * MiB, 200 * MiB, 0, 10_000, True),       # memory doubled: garbage nobody counted
    (200 * MiB, 50 * MiB, 0, 0, False),            # 4x, but under the floor: not worth a full collection
])
def test_should_thaw(rss, after_thaw, departed, connected, thaw):
    assert should_thaw(rss, after_thaw, departed, connected, growth=2.0, floor=256 * MiB, fraction=0.25,
                       min_departed=1000) is thaw


def test_resident_bytes_reads_this_process():
    before = resident_bytes()
    block = bytearray(64 * MiB)  # zero pages: touch them so they are resident
    for i in range(0, len(block), 4096):
        block[i] = 1
    assert resident_bytes() >= before + 60 * MiB


class Node:
    pass


async def test_freezer_freezes_survivors_and_thaws_frozen_garbage():
    gc.unfreeze()
    registry = CollectorRegistry()
    departures = [0]
    freezer = HeapFreezer(interval=0.05, departures=lambda: departures[0], connections=lambda: 30,
                          min_departed=10)
    freezer.register(registry)
    ctx = freezer.cleanup_ctx(None)
    await ctx.__anext__()
    try:
        startup = gc.get_freeze_count()
        assert startup > 1000  # the imports are out of every collection from the start

        collected: list[int] = []
        cycle = Node()
        cycle.me = cycle  # garbage only the cyclic collector can free
        weakref.finalize(cycle, collected.append, 1)
        survivors = [Node() for _ in range(2000)]
        await asyncio.sleep(0.2)
        assert gc.get_freeze_count() >= startup + len(survivors)
        assert freezer.thaws == 0

        del cycle
        gc.collect()
        assert collected == []  # frozen: a full collection does not walk it

        # Connections leave (a quarter of those seen): one thaw collects what was frozen and is garbage.
        departures[0] = 10
        for _ in range(40):
            await asyncio.sleep(0.05)
            if freezer.thaws:
                break
        assert freezer.thaws == 1
        assert collected == [1]
        assert freezer.frozen_after_thaw >= startup + len(survivors) - 100
        await asyncio.sleep(0.2)
        assert freezer.thaws == 1  # no new departures: no more thaws
        assert registry.get_sample_value("onair_gc_thaws_total") == 1
        assert registry.get_sample_value("onair_gc_full_collection_seconds_count") >= 1
        assert registry.get_sample_value("onair_gc_frozen_objects_at_thaw") == freezer.frozen_after_thaw
    finally:
        with pytest.raises(StopAsyncIteration):
            await ctx.__anext__()
    assert gc.get_freeze_count() == 0  # everything back to the collector when the app stops
    assert freezer._gc_callback not in gc.callbacks


async def test_freezer_thaws_when_memory_grows_without_departures():
    gc.unfreeze()
    memory = [100 * MiB]
    freezer = HeapFreezer(interval=0.05, thaw_growth=2.0, floor=0, memory=lambda: memory[0])
    ctx = freezer.cleanup_ctx(None)
    await ctx.__anext__()
    try:
        filler = [[] for _ in range(5000)]
        await asyncio.sleep(0.2)
        assert freezer.thaws == 0
        memory[0] = 200 * MiB
        for _ in range(40):
            await asyncio.sleep(0.05)
            if freezer.thaws:
                break
        assert freezer.thaws == 1
        assert freezer.frozen_after_thaw >= len(filler)
        assert freezer.rss_after_thaw == 200 * MiB
        await asyncio.sleep(0.2)
        assert freezer.thaws == 1  # grown since the thaw: no, so no second one
    finally:
        with pytest.raises(StopAsyncIteration):
            await ctx.__anext__()


async def test_freezer_off_leaves_the_collector_alone_and_times_it():
    registry = CollectorRegistry()
    freezer = HeapFreezer(interval=0)
    freezer.register(registry)
    ctx = freezer.cleanup_ctx(None)
    await ctx.__anext__()
    try:
        await asyncio.sleep(0.1)
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert registry.get_sample_value("onair_gc_full_collection_seconds_count") == 1
    finally:
        with pytest.raises(StopAsyncIteration):
            await ctx.__anext__()


def _metric(text: str, name: str) -> float | None:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


@pytest.mark.e2e
def test_serve_freezes_its_heap(node_factory):
    node = node_factory(gc_freeze_interval=0.5)
    assert _metric(node.metrics(), "onair_gc_frozen_objects_at_thaw") > 50_000  # the startup heap
    off = node_factory(gc_freeze_interval=0)
    assert _metric(off.metrics(), "onair_gc_frozen_objects_at_thaw") == 0
    assert _metric(off.metrics(), "onair_gc_full_collection_seconds_count") is not None
