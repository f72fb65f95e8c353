"""The hub events are published on, and the deliverer that posts them to the endpoints.

:meth:`WebhookHub.emit` never blocks and never fails: the event goes into a
bounded queue (full: dropped, counted, logged) that one task writes to the
store, fanned out to the endpoints that want it.  The deliverer claims due
queues (:mod:`broadcaster.webhooks.store`), posts each head signed per
Standard Webhooks, and on anything but a 2xx answer tries again after an
exponential back-off (``retry_base`` × 2^attempt, at most ``MAX_BACKOFF``)
until the event is ``MAX_AGE`` (24 h) old.  At most ``CONCURRENCY`` posts run
at once, each within ``TIMEOUT``; a slow or dead receiver delays only its own
queue.  Each (endpoint, broadcast) queue holds at most ``MAX_PENDING`` events: past that
new ones are dropped (counted in ``onair_webhook_events_dropped{where="endpoint"}``, logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp

from broadcaster.webhooks import signing
from broadcaster.webhooks.events import WebhookEvent
from broadcaster.webhooks.metrics import WebhookMetrics
from broadcaster.webhooks.store import MAX_PENDING, Attempt, Endpoint, WebhookStore, endpoint_of

log = logging.getLogger("onair.webhooks")

MAX_AGE = 24 * 3600.0
MAX_BACKOFF = 3600.0
CONCURRENCY = 8
TIMEOUT = 10.0
QUEUE_SIZE = 10_000


def backoff(retry_base: float, attempts: int) -> float:
    """Seconds before the next try of an event already tried ``attempts`` times (≥ 1)."""
    return float(min(retry_base * 2.0 ** (attempts - 1), MAX_BACKOFF))


class WebhookHub:
    def __init__(self, store: WebhookStore, *, retry_base: float = 5.0, poll: float = 0.25,
                 metrics: WebhookMetrics | None = None) -> None:
        self.store = store
        self.metrics = metrics or WebhookMetrics()
        self.retry_base = retry_base
        self._poll = poll
        self._events: asyncio.Queue[WebhookEvent] = asyncio.Queue(QUEUE_SIZE)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self.dropped = 0

    # --- publishing -----------------------------------------------------------

    def emit(self, event: WebhookEvent | None) -> None:
        """Queue ``event`` for every endpoint that wants it; never blocks."""
        if event is None:
            return
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            self.metrics.dropped.labels("hub").inc()
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("webhook queue full: %d events dropped so far (the store is not keeping up)", self.dropped)

    async def _pump(self) -> None:
        while True:
            event = await self._events.get()
            while True:
                try:
                    wanted = [e.id for e in await self.store.endpoints() if event.type.value in e.events]
                    if wanted:
                        full = await self.store.enqueue(wanted, event)
                        self._wake.set()
                        for endpoint_id in full:
                            self.metrics.dropped.labels("endpoint").inc()
                            log.error("webhook %s for %s dropped: endpoint %s already has %d pending for this "
                                      "broadcast (is it down?)", event.type.value, event.broadcast_id, endpoint_id,
                                      MAX_PENDING)
                    break
                except Exception as exc:  # Redis down: keep the event, try again
                    log.warning("queueing webhook event %s failed (%s); retrying", event.type.value, exc)
                    await asyncio.sleep(1.0)

    # --- delivering -----------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        self._tasks = [asyncio.create_task(self._pump(), name="webhooks-pump"),
                       asyncio.create_task(self._deliver_loop(), name="webhooks-deliver")]

    async def close(self) -> None:
        for task in [*self._tasks, *self._in_flight]:
            task.cancel()
        for task in [*self._tasks, *self._in_flight]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._http is not None:
            await self._http.close()
        await self.store.close()

    async def _deliver_loop(self) -> None:
        while True:
            free = CONCURRENCY - len(self._in_flight)
            if free > 0:
                try:
                    claimed = await self.store.claim(time.time(), free)
                except Exception as exc:
                    log.warning("claiming webhook deliveries failed: %s", exc)
                    claimed = []
                for queue in claimed:
                    task = asyncio.create_task(self._deliver_head(queue), name=f"webhook-{queue}")
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    async def _deliver_head(self, queue: str) -> None:
        try:
            await self._try(queue)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery of %s failed unexpectedly", queue)
            with contextlib.suppress(Exception):  # else the claim expires and the head is tried again
                await self.store.retry(queue, time.time() + self.retry_base)

    async def _try(self, queue: str) -> None:
        head = await self.store.head(queue)
        if head is None:
            await self.store.drop(queue)
            return
        event, attempts = head
        endpoint = next((e for e in await self.store.endpoints() if e.id == endpoint_of(queue)), None)
        if endpoint is None:  # deleted meanwhile: its pending events go with it
            await self.store.drop(queue)
            return
        status, error = await self._post(endpoint, event)
        now = time.time()
        attempt = attempts + 1
        if status is not None and 200 <= status < 300:
            outcome = "delivered"
        elif now - event.occurred_at + backoff(self.retry_base, attempt) > MAX_AGE:
            outcome = "given up"
            log.warning("webhook %s to %s: given up after %d attempts (last: %s)", event.type.value, endpoint.id,
                        attempt, status or error)
        else:
            outcome = "retrying"
        self.metrics.attempts.labels(outcome).inc()
        await self.store.log(endpoint.id, Attempt(event.id, event.type.value, event.broadcast_id, attempt, status,
                                                  error, now, outcome))
        if outcome == "retrying":
            await self.store.retry(queue, now + backoff(self.retry_base, attempt))
        else:
            await self.store.delivered(queue, event.id)
            self._wake.set()  # the next event of this queue is due now

    async def _post(self, endpoint: Endpoint, event: WebhookEvent) -> tuple[int | None, str]:
        assert self._http is not None
        body = event.body()
        headers = signing.headers(endpoint.secret, event.id, int(time.time()), body)
        try:
            async with self._http.post(endpoint.url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.content.read(4096)  # a little of the answer; the rest is not ours to read
                return resp.status, ""
        except asyncio.TimeoutError:
            return None, f"no answer within {TIMEOUT:.0f} s"
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:200]
