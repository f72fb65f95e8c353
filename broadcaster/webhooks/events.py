"""What a webhook says: one typed, frozen event per thing that happened.

Every part of the node that has news builds a :class:`WebhookEvent` (with the
constructors below) and hands it to the hub (``broadcaster.webhooks.emit``);
the hub never blocks the caller, and delivery is another module's job
(:mod:`broadcaster.webhooks.delivery`).  The body each receiver gets is
:meth:`WebhookEvent.body`: ``{"type", "timestamp", "data"}`` as the Standard
Webhooks specification suggests, with ``data.broadcast_id`` always set (events
are delivered in order per broadcast).
"""

from __future__ import annotations

import enum
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


class EventType(str, enum.Enum):
    BROADCAST_CREATED = "broadcast.created"
    BROADCAST_LIVE = "broadcast.live"
    BROADCAST_RECONNECTING = "broadcast.reconnecting"
    BROADCAST_ENDED = "broadcast.ended"
    RECORDING_READY = "recording.ready"
    COMMENT_HELD = "comment.held"
    SIMULCAST_FAILED = "simulcast.failed"


EVENT_TYPES = frozenset(t.value for t in EventType)


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class WebhookEvent:
    type: EventType
    broadcast_id: str
    #: what the event says beyond the broadcast id (JSON-serialisable, no secrets)
    data: dict[str, Any] = field(default_factory=dict)
    #: the ``webhook-id``: the same on every attempt, so a receiver can drop duplicates
    id: str = field(default_factory=new_message_id)
    occurred_at: float = field(default_factory=time.time)

    def body(self) -> bytes:
        stamp = datetime.fromtimestamp(self.occurred_at, timezone.utc).isoformat().replace("+00:00", "Z")
        return json.dumps({"type": self.type.value, "timestamp": stamp,
                           "data": {"broadcast_id": self.broadcast_id, **self.data}},
                          separators=(",", ":"), sort_keys=True).encode()

    def to_json(self) -> str:
        return json.dumps({"type": self.type.value, "broadcast_id": self.broadcast_id, "data": self.data,
                           "id": self.id, "occurred_at": self.occurred_at})

    @classmethod
    def from_json(cls, raw: str | bytes) -> "WebhookEvent":
        doc = json.loads(raw)
        return cls(type=EventType(doc["type"]), broadcast_id=doc["broadcast_id"], data=doc["data"], id=doc["id"],
                   occurred_at=doc["occurred_at"])


_STATUS_EVENTS = {"live": EventType.BROADCAST_LIVE, "reconnecting": EventType.BROADCAST_RECONNECTING,
                  "ended": EventType.BROADCAST_ENDED}


def status_event(broadcast_id: str, status: str, title: str = "") -> WebhookEvent | None:
    """The event for a broadcast entering ``status`` (None for a status nobody is told about)."""
    kind = _STATUS_EVENTS.get(status)
    return None if kind is None else WebhookEvent(kind, broadcast_id, {"status": status, "title": title})


def broadcast_created(broadcast_id: str, title: str, scheduled_start: float | None) -> WebhookEvent:
    return WebhookEvent(EventType.BROADCAST_CREATED, broadcast_id,
                        {"title": title, "scheduled_start": scheduled_start})


def recording_ready(broadcast_id: str, url: str, duration: float | None = None) -> WebhookEvent:
    return WebhookEvent(EventType.RECORDING_READY, broadcast_id, {"url": url, "duration": duration})


def comment_held(broadcast_id: str, held_id: str, reason: str) -> WebhookEvent:
    # the comment's text stays on the node (the console shows it): a webhook says only that one waits
    return WebhookEvent(EventType.COMMENT_HELD, broadcast_id, {"held_id": held_id, "reason": reason})


def simulcast_failed(broadcast_id: str, target_id: str, reason: str) -> WebhookEvent:
    return WebhookEvent(EventType.SIMULCAST_FAILED, broadcast_id, {"target_id": target_id, "reason": reason})
