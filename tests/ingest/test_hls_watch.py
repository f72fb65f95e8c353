"""PlaylistWatch: publishing wakes the waiters of that playlist only; waits time out."""

from __future__ import annotations

import asyncio

from ingest.hls.watch import PlaylistPosition, PlaylistWatch

POSITION = PlaylistPosition(last_msn=11, part_msn=12, last_part=0, part_target=0.5, target_duration=2.0)


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0)


async def test_publish_wakes_the_waiters_of_that_playlist_only():
    watch = PlaylistWatch()
    source = [asyncio.create_task(watch.changed("b1", "source", 60)) for _ in range(3)]
    other = asyncio.create_task(watch.changed("b1", "720p", 60))
    await _until(lambda: watch.waiting("b1", "source") == 3 and watch.waiting("b1", "720p") == 1)
    watch.publish("b1", "source", POSITION)
    # the woken ones no longer wait for the next publish
    assert watch.waiting("b1", "source") == 0
    assert await asyncio.gather(*source) == [True, True, True]
    assert watch.position("b1", "source") == POSITION
    assert not other.done()
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)
    assert watch.waiting("b1", "720p") == 0


async def test_a_wait_times_out_and_leaves_nothing_behind():
    watch = PlaylistWatch()
    assert await watch.changed("b1", "source", 0.001) is False
    assert watch.waiting("b1", "source") == 0
    assert watch._changed == {}


async def test_forget_wakes_the_waiters_and_drops_the_positions():
    watch = PlaylistWatch()
    watch.publish("b1", "source", POSITION)
    waiter = asyncio.create_task(watch.changed("b1", "source", 60))
    await _until(lambda: watch.waiting("b1", "source") == 1)
    watch.forget("b1")
    assert await waiter is True
    assert watch.position("b1", "source") is None
