"""Where webhook endpoints and pending deliveries live.

An endpoint (:class:`Endpoint`) is a URL, the events it wants and its secret.
Pending deliveries are one queue per (endpoint, broadcast), so events reach an
endpoint in order per broadcast: only a queue's head is ever tried, and it
leaves the queue once delivered (at least once).  A *due* index says when
each non-empty queue may be tried next (a failed head waits its back-off);
a worker *claims* a due queue for a while before trying it, so with Redis
exactly one node of the cluster tries each event at a time
(:mod:`broadcaster.webhooks.store_redis`).

One node without Redis (:class:`LocalWebhookStore`): endpoints are kept in
``<data_dir>/webhooks.json`` (0600: it holds the secrets), pending deliveries
in memory (a restart loses those not yet delivered).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from broadcaster import datadir
from broadcaster.webhooks.events import WebhookEvent

#: delivery attempts kept per endpoint (newest first)
LOG_SIZE = 100
#: events waiting per (endpoint, broadcast) queue; past it new ones are dropped (and counted)
MAX_PENDING = 1000


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: float

    def public(self) -> dict[str, object]:
        """As the API lists it: never the secret."""
        return {"id": self.id, "url": self.url, "events": list(self.events), "created_at": self.created_at}

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Endpoint":
        doc = json.loads(raw)
        doc["events"] = tuple(doc["events"])
        return cls(**doc)


@dataclass(frozen=True)
class Attempt:
    """One try of one event at one endpoint, for the delivery log."""

    message_id: str
    event: str
    broadcast_id: str
    attempt: int
    #: the receiver's HTTP status, or None when no answer came (``error`` says why)
    status: int | None
    error: str
    at: float
    #: "delivered", "retrying" or "given up"
    outcome: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def queue_name(endpoint_id: str, broadcast_id: str) -> str:
    return f"{endpoint_id}|{broadcast_id}"


def endpoint_of(queue: str) -> str:
    return queue.split("|", 1)[0]


class WebhookStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def add_endpoint(self, endpoint: Endpoint) -> None: ...
    async def endpoints(self) -> list[Endpoint]: ...
    async def remove_endpoint(self, endpoint_id: str) -> bool: ...
    async def enqueue(self, endpoint_ids: list[str], event: WebhookEvent) -> list[str]:
        """Append ``event`` to each endpoint's queue for its broadcast; the endpoints whose queue was full."""
    async def claim(self, now: float, limit: int) -> list[str]:
        """Due queues this node now holds (for the claim's time), at most ``limit``."""
    async def head(self, queue: str) -> tuple[WebhookEvent, int] | None:
        """The queue's first event and how many times it was tried already."""
    async def delivered(self, queue: str, message_id: str) -> None:
        """The head was delivered (or given up): drop it, the next one is due now; release the claim."""
    async def retry(self, queue: str, due: float) -> None:
        """The head failed: count the attempt, try again at ``due``; release the claim."""
    async def drop(self, queue: str) -> None: ...
    async def log(self, endpoint_id: str, attempt: Attempt) -> None: ...
    async def deliveries(self, endpoint_id: str) -> list[dict[str, object]]: ...


class LocalWebhookStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._endpoints: dict[str, Endpoint] = {}
        self._queues: dict[str, deque[WebhookEvent]] = {}
        self._attempts: dict[str, int] = {}
        self._due: dict[str, float] = {}
        self._claimed: set[str] = set()
        self._logs: dict[str, deque[Attempt]] = {}

    async def open(self) -> None:
        doc = await asyncio.to_thread(datadir.read_json, self._path, "webhook endpoints")
        for raw in (doc or {}).get("endpoints", []):
            endpoint = Endpoint.from_json(json.dumps(raw))
            self._endpoints[endpoint.id] = endpoint

    async def close(self) -> None:
        """Nothing to release (the endpoints are written as they change)."""

    async def _save(self) -> None:
        data = json.dumps({"endpoints": [asdict(e) for e in self._endpoints.values()]}).encode()
        await asyncio.to_thread(datadir.write_private, self._path, data)

    async def add_endpoint(self, endpoint: Endpoint) -> None:
        self._endpoints[endpoint.id] = endpoint
        await self._save()

    async def endpoints(self) -> list[Endpoint]:
        return sorted(self._endpoints.values(), key=lambda e: e.created_at)

    async def remove_endpoint(self, endpoint_id: str) -> bool:
        if self._endpoints.pop(endpoint_id, None) is None:
            return False
        await self._save()
        return True

    async def enqueue(self, endpoint_ids: list[str], event: WebhookEvent) -> list[str]:
        full: list[str] = []
        for endpoint_id in endpoint_ids:
            queue = queue_name(endpoint_id, event.broadcast_id)
            pending = self._queues.setdefault(queue, deque())
            if len(pending) >= MAX_PENDING:
                full.append(endpoint_id)
                continue
            pending.append(event)
            self._due.setdefault(queue, time.time())
        return full

    async def claim(self, now: float, limit: int) -> list[str]:
        due = sorted((at, q) for q, at in self._due.items() if at <= now and q not in self._claimed)
        taken = [q for _, q in due[:limit]]
        self._claimed.update(taken)
        return taken

    async def head(self, queue: str) -> tuple[WebhookEvent, int] | None:
        pending = self._queues.get(queue)
        return (pending[0], self._attempts.get(queue, 0)) if pending else None

    async def delivered(self, queue: str, message_id: str) -> None:
        pending = self._queues.get(queue)
        if pending and pending[0].id == message_id:
            pending.popleft()
        self._attempts.pop(queue, None)
        if pending:
            self._due[queue] = time.time()
        else:
            self._queues.pop(queue, None)
            self._due.pop(queue, None)
        self._claimed.discard(queue)

    async def retry(self, queue: str, due: float) -> None:
        self._attempts[queue] = self._attempts.get(queue, 0) + 1
        self._due[queue] = due
        self._claimed.discard(queue)

    async def drop(self, queue: str) -> None:
        for table in (self._queues, self._attempts, self._due):
            table.pop(queue, None)
        self._claimed.discard(queue)

    async def log(self, endpoint_id: str, attempt: Attempt) -> None:
        self._logs.setdefault(endpoint_id, deque(maxlen=LOG_SIZE)).appendleft(attempt)

    async def deliveries(self, endpoint_id: str) -> list[dict[str, object]]:
        return [asdict(a) for a in self._logs.get(endpoint_id, ())]
