"""A recording :class:`~ingest.source.IngestHub` for tests and benchmarks of the WHIP edge.

It stands in for the node: it checks stream keys like the registry does
(``live_<id>_<secret>``), can refuse with any :class:`PublishRefused` code,
and records every unit, metadata and close reason it is given.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ingest.media import MediaKind, MediaUnit
from ingest.source import PublishRefused


@dataclass
class RecordingSink:
    stream_key: str
    protocol: str
    remote: str
    disconnect: Callable[[], None] | None
    units: list[MediaUnit] = field(default_factory=list)
    metadata: list[Mapping[str, object]] = field(default_factory=list)
    close_reason: str | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_metadata(self, metadata: Mapping[str, object]) -> None:
        self.metadata.append(dict(metadata))

    def on_unit(self, unit: MediaUnit) -> None:
        if self.close_reason is not None:
            raise AssertionError("unit delivered after close")
        self.units.append(unit)

    async def close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
            self.closed.set()

    def media(self, kind: MediaKind) -> list[MediaUnit]:
        return [u for u in self.units if u.kind is kind and not u.config]

    def configs(self, kind: MediaKind) -> list[MediaUnit]:
        return [u for u in self.units if u.kind is kind and u.config]


class RecordingHub:
    """Accepts the keys it knows; ``refuse`` forces a refusal code for the next publishes."""

    def __init__(self, keys: dict[str, str] | None = None) -> None:
        #: broadcast id -> stream key
        self.keys = dict(keys or {})
        self.refuse: tuple[str, str] | None = None
        self.sinks: list[RecordingSink] = []
        self.refusals: list[tuple[str, str]] = []
        self.published = asyncio.Event()

    async def check_key(self, stream_key: str, *, protocol: str, remote: str) -> None:
        parts = stream_key.split("_", 2)
        expected = self.keys.get(parts[1]) if len(parts) == 3 else None
        if expected is None or not hmac.compare_digest(expected.encode(), stream_key.encode()):
            self.refusals.append((protocol, "bad_key"))
            raise PublishRefused("bad_key", "unknown stream key")

    async def open_publish(self, stream_key: str, *, protocol: str, remote: str,
                           disconnect: Callable[[], None] | None = None) -> RecordingSink:
        await self.check_key(stream_key, protocol=protocol, remote=remote)
        parts = stream_key.split("_", 2)
        if self.refuse is not None:
            self.refusals.append((protocol, self.refuse[0]))
            raise PublishRefused(*self.refuse)
        live = [s for s in self.sinks if s.stream_key == stream_key and s.close_reason is None]
        if live:
            self.refusals.append((protocol, "already_live"))
            raise PublishRefused("already_live", f"broadcast {parts[1]} already has a publisher")
        sink = RecordingSink(stream_key, protocol, remote, disconnect)
        self.sinks.append(sink)
        self.published.set()
        return sink

    def record_refusal(self, protocol: str, reason: str) -> None:
        self.refusals.append((protocol, reason))
