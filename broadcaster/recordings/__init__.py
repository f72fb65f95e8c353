"""Recordings: every ended broadcast as an asset (MP4, poster, HLS replay, chat replay), its retention
and deletion, optionally kept in S3-compatible object storage.

``setup_recordings(app)`` adds the routes (``api.py``) and, in a ``cleanup_ctx``, opens the chat
timeline (``timeline.py``: SQLite or Redis, like the node's other state), plugs it into the chat
relay as its recorder, and runs the :class:`~broadcaster.recordings.service.RecordingService` task
(make, expire) until shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from broadcaster.keys import CONFIG, STORE
from broadcaster.recordings.api import RECORDINGS, add_routes
from broadcaster.recordings.service import RecordingService
from broadcaster.recordings.timeline import ChatTimeline, RedisTimeline, SqliteTimeline
from broadcaster.webhooks import emit
from broadcaster.webhooks.events import recording_ready

log = logging.getLogger("onair.recordings")


def setup_recordings(app: web.Application, *, scan_interval: float = 2.0) -> None:
    """After the chat and moderation set-ups: the relay records into the timeline, deletion erases
    the chat bus's history and the moderation archive."""
    from broadcaster.chat import CHAT_RELAY
    from broadcaster.moderation_api import MOD_STORE

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        redis: Redis | None = None
        timeline: ChatTimeline
        if config.redis_url:
            redis = Redis.from_url(config.redis_url, socket_connect_timeout=2, socket_timeout=5,
                                   health_check_interval=5, retry_on_timeout=True)
            timeline = RedisTimeline(redis)
        else:
            timeline = SqliteTimeline(config.data_dir / "recordings.db")
        await timeline.open()
        async def ended_at(broadcast_id: str) -> float | None:
            broadcast = await app[STORE].get(broadcast_id)
            return broadcast.ended_at if broadcast is not None else None

        uploader = None
        if config.recording_store:
            from broadcaster.recordings.storage import ObjectStore, Uploader

            store = ObjectStore.from_url(config.recording_store, config.recording_store_endpoint)
            uploader = Uploader(store, local_grace=config.recording_local_grace)
        service = RecordingService(config.data_dir, timeline, retention_days=config.retention_days,
                                   scan_interval=scan_interval,
                                   erase_chat=lambda bid: app[CHAT_RELAY].erase_broadcast_chat(bid),
                                   erase_archive=lambda bid: app[MOD_STORE].erase_broadcast_comments(bid),
                                   uploader=uploader, ended_at=ended_at)
        service.start()
        base = config.public_url.rstrip("/")  # empty: the URL in the event is relative to the node
        service.on_ready = lambda bid, meta: emit(app, recording_ready(bid, f"{base}/api/broadcasts/{bid}/recording",
                                                                       meta.duration))
        app[RECORDINGS] = service
        if CHAT_RELAY in app:
            app[CHAT_RELAY].recorder = service
        task = asyncio.create_task(service.run(), name="recordings")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if CHAT_RELAY in app:
            app[CHAT_RELAY].recorder = None
        await service.close()
        if uploader is not None:
            await uploader.close()
        await timeline.close()
        if redis is not None:
            await redis.aclose()

    app.cleanup_ctx.append(lifecycle)
    add_routes(app)


__all__ = ["RECORDINGS", "RecordingService", "setup_recordings"]
