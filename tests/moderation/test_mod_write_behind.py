"""WriteBehind: order, batching, flush, errors, bounded queue, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from moderation.write_behind import WriteBehind


class Sink:
    """A batch writer that records batches; each write waits for ``gate`` when it is set up."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.fail_next = False

    async def __call__(self, batch: list[int]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise OSError("store down")
        self.batches.append(batch)

    @property
    def items(self) -> list[int]:
        return [i for b in self.batches for i in b]


async def test_submit_returns_at_once_and_items_are_written_in_order_in_batches() -> None:
    sink = Sink()
    sink.gate = asyncio.Event()
    wb: WriteBehind[int] = WriteBehind(sink, max_batch=50)
    wb.start()
    for i in range(120):
        await wb.submit(i)  # the writer is blocked: these only queue
    assert sink.items == [] and len(wb) > 0
    sink.gate.set()
    await wb.flush()
    assert sink.items == list(range(120))
    assert len(sink.batches) < 120 and max(len(b) for b in sink.batches) <= 50
    assert wb.written == 120 and wb.failed == 0
    await wb.close()


async def test_write_waits_for_its_batch_and_keeps_the_order_with_submissions() -> None:
    sink = Sink()
    wb: WriteBehind[int] = WriteBehind(sink)
    wb.start()
    await wb.submit(1)
    await wb.submit(2)
    await wb.write(3)
    assert sink.items == [1, 2, 3]
    await wb.close()


async def test_a_failed_batch_is_counted_and_raised_to_writers_only() -> None:
    sink = Sink()
    wb: WriteBehind[int] = WriteBehind(sink)
    wb.start()
    sink.fail_next = True
    with pytest.raises(OSError):
        await wb.write(1)
    sink.fail_next = True
    await wb.submit(2)  # the submitter has gone on: the loss is logged and counted
    await wb.flush()
    await wb.write(3)
    assert sink.items == [3] and wb.failed == 2 and wb.written == 1
    await wb.close()


async def test_the_queue_is_bounded_submitters_wait_for_room() -> None:
    sink = Sink()
    sink.gate = asyncio.Event()
    wb: WriteBehind[int] = WriteBehind(sink, max_queue=10, max_batch=5)
    wb.start()
    for i in range(10):
        await wb.submit(i)
    await asyncio.sleep(0)  # the writer took its first batch (blocked on the gate)
    more = [asyncio.create_task(wb.submit(i)) for i in range(10, 20)]
    await asyncio.sleep(0.05)
    assert len(wb) <= 10 and not all(t.done() for t in more)
    sink.gate.set()
    await asyncio.gather(*more)
    await wb.close()
    assert sink.items == list(range(20))


async def test_close_writes_what_is_queued_and_later_calls_write_directly() -> None:
    sink = Sink()
    sink.gate = asyncio.Event()
    wb: WriteBehind[int] = WriteBehind(sink)
    wb.start()
    for i in range(5):
        await wb.submit(i)
    closing = asyncio.create_task(wb.close())
    await asyncio.sleep(0.01)
    sink.gate.set()
    await closing
    assert sink.items == list(range(5)) and not wb.running
    await wb.submit(5)  # after close: written at once, errors raised to the caller
    assert sink.items[-1] == 5
    sink.fail_next = True
    with pytest.raises(OSError):
        await wb.submit(6)
    await wb.close()  # idempotent
