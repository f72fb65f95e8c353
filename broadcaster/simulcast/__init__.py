"""Simulcast: forward a live broadcast, copied (no re-encode), to other RTMP/RTMPS servers.

- :mod:`.targets` what a target is, URL/key validation, status names, scrubbing
- :mod:`.store` targets in SQLite (``simulcast.db``, 0600) or Redis
- :mod:`.queue` the bounded per-target queue (pure): keyframe start, drop to keyframe, timestamps
- :mod:`.forwarder` one target's task: TCP/TLS, :mod:`ingest.rtmp.client`, retry with backoff
- :mod:`.hub` a forwarding per live broadcast, figures, status-change subscribers (webhooks)
- :mod:`.api` the HTTP API; :mod:`.metrics` ``onair_simulcast_*``
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from broadcaster.keys import CONFIG, LIVE, METRICS
from broadcaster.simulcast import api
from broadcaster.simulcast.api import SIMULCAST, targets_of
from broadcaster.simulcast.forwarder import ForwarderOptions, StatusChange
from broadcaster.simulcast.hub import SimulcastHub
from broadcaster.simulcast.metrics import SimulcastMetrics
from broadcaster.simulcast.store import RedisTargetStore, SqliteTargetStore, TargetStore


async def _simulcast(app: web.Application) -> AsyncIterator[None]:
    from broadcaster.keys import REDIS  # the node's Redis client, opened by its storage context

    config = app[CONFIG]
    store: TargetStore = RedisTargetStore(app[REDIS]) if config.redis_url else \
        SqliteTargetStore(config.data_dir / "simulcast.db")
    await store.open()
    options = ForwarderOptions(retry_max=config.simulcast_retry_max, max_lag_ms=int(config.simulcast_max_lag * 1000),
                               ca_file=config.simulcast_ca_file)
    hub = SimulcastHub(store, options, SimulcastMetrics(app[METRICS].registry))
    app[SIMULCAST] = hub
    task = asyncio.create_task(hub.run(), name="simulcast")
    app[LIVE].attach_taps(hub)  # broadcasts resumed at start get theirs too
    yield
    app[LIVE].attach_taps(None)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await hub.close()
    await store.close()


def setup_simulcast(app: web.Application) -> None:
    """After the storage context (it uses the live manager and the Redis client)."""
    app.cleanup_ctx.append(_simulcast)
    api.add_routes(app)


__all__ = ["SIMULCAST", "SimulcastHub", "StatusChange", "setup_simulcast", "targets_of"]
