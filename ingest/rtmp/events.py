"""What an RTMP server session (:mod:`ingest.rtmp.session`) tells its server: the events, in order, and
the :class:`Step` (bytes to write back + events) each call returns.  Frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ingest.media import MediaUnit
from ingest.rtmp import outbox


@dataclass(frozen=True, slots=True)
class Connected:
    app: str
    tc_url: str | None


@dataclass(frozen=True, slots=True)
class PublishRequested:
    """The client asked to publish ``stream_key``: ask the hub, then call
    ``accept_publish()`` or ``refuse_publish()``."""

    stream_key: str
    stream_id: int


@dataclass(frozen=True, slots=True)
class MetadataReceived:
    metadata: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class UnitReceived:
    unit: MediaUnit


@dataclass(frozen=True, slots=True)
class Unpublished:
    """The publisher ended its publish (``reason``: the command it sent)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The session refused something and answered the client; close the
    connection after sending.  ``code`` is a short reason for metrics."""

    code: str
    description: str


Event = Connected | PublishRequested | MetadataReceived | UnitReceived | Unpublished | Refused


#: The result of feeding bytes: what to send, and what happened.
Step = outbox.Step[Event]
