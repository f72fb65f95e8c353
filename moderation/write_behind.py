"""A write-behind queue: records written in batches by one owned task, off the caller's path.

The moderation step archives every comment (right of access).  Awaiting that
write before a comment is published put a store round trip on every comment's
way to the screen; ``WriteBehind`` takes the record at once and writes it in
the next batch instead.

- ``submit(item)`` queues and returns (waits only while the queue is full:
  bounded memory, backpressure instead of loss);
- ``write(item)`` queues and returns once the batch holding it is written
  (raises what the write raised): for records that must be stored before the
  caller answers;
- ``flush()`` returns once everything queued before it is written (readers
  call it, so a read sees every earlier write);
- ``close()`` flushes and stops the task (idempotent).

Items are written in the order they were queued, whether submitted or written.
A failed batch is not retried: it is logged and counted in ``failed``, and
the ``write`` callers in it get the error.  Before ``start`` and after
``close`` every call writes directly and raises what the write raises (a
closed store fails the caller, as it did before the queue).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["WriteBehind"]

log = logging.getLogger("onair.moderation.write_behind")

T = TypeVar("T")


class WriteBehind(Generic[T]):
    def __init__(self, write_batch: Callable[[list[T]], Awaitable[None]], *, max_queue: int = 10_000,
                 max_batch: int = 500, name: str = "write-behind") -> None:
        if max_queue < 1 or max_batch < 1:
            raise ValueError("max_queue and max_batch must be positive")
        self._write_batch = write_batch
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._name = name
        #: (item, future of the caller waiting for it, or None)
        self._queue: deque[tuple[T, asyncio.Future[None] | None]] = deque()
        self._barriers: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._queued = 0  # items ever queued
        self._done = 0  # items ever taken out of the queue and written (or failed)
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.failed = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def __len__(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def submit(self, item: T) -> None:
        if not self.running:
            await self._direct([item])
            return
        await self._wait_for_space()
        self._put(item, None)

    async def write(self, item: T) -> None:
        if not self.running:
            await self._direct([item])
            return
        await self._wait_for_space()
        future = asyncio.get_running_loop().create_future()
        self._put(item, future)
        await future

    async def flush(self) -> None:
        if not self.running or self._done >= self._queued:
            return
        future = asyncio.get_running_loop().create_future()
        self._barriers.append((self._queued, future))
        await future

    async def close(self) -> None:
        task = self._task
        if task is None or self._closing:
            return
        self._closing = True
        # Let the task drain the queue (it keeps taking submissions meanwhile, so
        # the order holds), then stop it; what is left is written here, not lost.
        try:
            await asyncio.wait_for(self.flush(), 10)
        except asyncio.TimeoutError:
            log.error("%s: still writing after 10 s at shutdown", self._name)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._task = None
        while self._queue:
            await self._write_some()
        self._release_barriers()

    # --- internals ---------------------------------------------------------------
    def _put(self, item: T, future: asyncio.Future[None] | None) -> None:
        self._queue.append((item, future))
        self._queued += 1
        self._wake.set()

    async def _wait_for_space(self) -> None:
        while len(self._queue) >= self._max_queue and self.running:
            self._space.clear()
            await self._space.wait()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            # Everything queued while the previous batch was being written goes in
            # the next one: batches grow with the load, latency stays one write.
            await self._write_some()

    async def _write_some(self) -> None:
        batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
        self._space.set()
        if not batch:
            self._release_barriers()
            return
        error: BaseException | None = None
        try:
            await self._write_batch([item for item, _ in batch])
            self.written += len(batch)
        except asyncio.CancelledError:
            # Shutdown while writing: put the batch back for close() to write.
            self._queue.extendleft(reversed(batch))
            raise
        except Exception as exc:
            error = exc
            self.failed += len(batch)
            log.error("%s: %d records not written: %s", self._name, len(batch), exc)
        self._done += len(batch)
        for _, future in batch:
            if future is not None and not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
        self._release_barriers()

    def _release_barriers(self) -> None:
        while self._barriers and self._barriers[0][0] <= self._done:
            _, future = self._barriers.popleft()
            if not future.done():
                future.set_result(None)

    async def _direct(self, items: list[T]) -> None:
        try:
            await self._write_batch(items)
        except Exception:
            self.failed += len(items)
            raise
        self.written += len(items)
