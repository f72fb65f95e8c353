"""One live broadcast on this node (:class:`LiveSession`) and what its publisher feeds
(:class:`PublisherSink`). :class:`broadcaster.live.LiveManager` creates and ends them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from broadcaster.ingest_stats import IngestStats
from ingest.media import MediaUnit
from ingest.source import MediaTap

if TYPE_CHECKING:
    from ingest.pipeline import HlsPipeline


class LiveSession:
    """One broadcast while it is live or reconnecting on this node."""

    def __init__(self, broadcast_id: str, pipeline: HlsPipeline) -> None:
        self.broadcast_id = broadcast_id
        self.pipeline = pipeline
        self.publisher: PublisherSink | None = None
        self.grace_task: asyncio.Task[None] | None = None
        self.live_since = time.time()
        self.stats = IngestStats()
        #: simulcast (``broadcaster/simulcast``), when the node has it
        self.tap: MediaTap | None = None


class PublisherSink:
    """What one accepted publish connection feeds (implements PublishSink)."""

    def __init__(self, gone: Gone, session: LiveSession,
                 disconnect: Callable[[], None] | None, stream_key: str = "") -> None:
        self._gone = gone
        self._session = session
        self._disconnect = disconnect
        #: the key this publish was accepted with (a rotation drops it: key_rotation.py)
        self.stream_key = stream_key
        self.closed = False

    def on_metadata(self, metadata: Mapping[str, object]) -> None:
        stats = self._session.stats
        for key, attr in (("width", "width"), ("height", "height")):
            value = metadata.get(key)
            if isinstance(value, (int, float)) and value > 0:
                setattr(stats, attr, int(value))

    def on_unit(self, unit: MediaUnit) -> None:
        if self.closed:
            return
        self._session.stats.count(unit)
        self._session.pipeline.feed(unit)
        if self._session.tap is not None:
            self._session.tap.feed(unit)

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        await self._gone(self._session, self, reason)

    def disconnect(self) -> None:
        if self._disconnect is not None and not self.closed:
            self._disconnect()


#: what a sink calls once when its publish ends: (session, sink, reason)
Gone = Callable[[LiveSession, PublisherSink, str], Awaitable[None]]
