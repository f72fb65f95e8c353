"""The contract between a protocol edge (RTMP, WHIP) and the node.

An edge authenticates nothing itself: it asks the hub to open a publish for a
stream key and gets a sink, or a :class:`PublishRefused` carrying the status it
should answer with.  The edge then pushes units into the sink and closes it
with a reason when the publisher goes away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from ingest.media import MediaUnit
from ingest.redact import redact as redact  # (re-exported for the edges)


class PublishRefused(Exception):
    """The hub will not take this publish.

    ``code`` is a protocol-neutral reason (``bad_key``, ``already_live``,
    ``ended``, ``unsupported_codec``, ``busy``); edges map it to their own status
    (RTMP ``NetStream.Publish.BadName``, WHIP 401/409 ...).
    """

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class PublishSink(Protocol):
    """Where an accepted publish delivers its media.  Methods never block."""

    def on_metadata(self, metadata: Mapping[str, object]) -> None: ...

    def on_unit(self, unit: MediaUnit) -> None: ...

    async def close(self, reason: str) -> None:
        """The publisher went away (``reason`` is for logs: 'deleteStream', 'network', ...)."""
        ...


class IngestHub(Protocol):
    async def open_publish(self, stream_key: str, *, protocol: str, remote: str,
                           disconnect: Callable[[], None] | None = None) -> PublishSink:
        """Accept a publisher for ``stream_key`` or raise :class:`PublishRefused`.

        ``disconnect`` lets the hub drop the publisher (broadcast ended by the
        host, key rotated ...); the edge then closes the sink as usual.
        """
        ...

    async def check_key(self, stream_key: str, *, protocol: str, remote: str) -> None:
        """Raise :class:`PublishRefused` unless ``stream_key`` is a broadcast's current key
        (compared whole, in constant time) and the broadcast may still go live.  Opens
        nothing: an edge whose publish costs resources up front (WHIP's peer connection)
        asks this first, so a wrong key costs a registry read and nothing more."""
        ...

    def record_refusal(self, protocol: str, reason: str) -> None:
        """Count a refusal that happened at the edge (bad handshake, bad codec ...)."""
        ...


class MediaTap(Protocol):
    """Another consumer of a live broadcast's units besides its HLS pipeline (simulcast).

    ``feed`` runs on the ingest path for every unit: it must never block or wait."""

    def feed(self, unit: MediaUnit) -> None: ...

    def discontinuity(self) -> None:
        """The publisher came back: its clock restarts."""
        ...

    async def close(self) -> None:
        """The broadcast ended here."""
        ...


class MediaTaps(Protocol):
    def open(self, broadcast_id: str) -> MediaTap: ...
