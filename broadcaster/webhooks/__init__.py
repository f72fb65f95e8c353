"""Webhooks: events published on a hub, delivered signed (Standard Webhooks) to the endpoints that want them.

- :mod:`.events` — one frozen :class:`WebhookEvent` per thing that happened, and its constructors;
- :mod:`.delivery` — :class:`WebhookHub`: ``emit`` (never blocks) and the deliverer (back-off, in order);
- :mod:`.store` / :mod:`.store_redis` — endpoints and pending deliveries, one node or a cluster;
- :mod:`.signing`, :mod:`.urls` — the signature and the URL check;
- :mod:`.api` — ``/api/webhooks``.

Any part of the node reports an event with ``emit(app, event)``; with no hub
(an app built without ``setup_webhooks``) it is a no-op.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from broadcaster.keys import CONFIG, LIVE, METRICS
from broadcaster.webhooks.delivery import WebhookHub
from broadcaster.webhooks.events import EventType, WebhookEvent, simulcast_failed, status_event
from broadcaster.webhooks.metrics import WebhookMetrics
from broadcaster.webhooks.store import LocalWebhookStore, WebhookStore

WEBHOOKS = web.AppKey("webhooks", WebhookHub)


def emit(app: web.Application, event: WebhookEvent | None) -> None:
    hub = app.get(WEBHOOKS)
    if hub is not None:
        hub.emit(event)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store: WebhookStore
    if config.redis_url:
        from broadcaster.keys import REDIS
        from broadcaster.webhooks.store_redis import RedisWebhookStore

        store = RedisWebhookStore(app[REDIS])
    else:
        store = LocalWebhookStore(config.data_dir / "webhooks.json")
    hub = WebhookHub(store, retry_base=config.webhook_retry_base,
                     metrics=WebhookMetrics(app[METRICS].registry if METRICS in app else None))
    await hub.start()
    app[WEBHOOKS] = hub
    app[LIVE].status_listener = lambda b: hub.emit(status_event(b.id, b.status.value, b.title))
    yield
    app[LIVE].status_listener = None
    await hub.close()


async def _listen_to_simulcast(app: web.Application) -> None:
    """After every context has started: a simulcast target the destination refused is ``simulcast.failed``."""
    from broadcaster.simulcast.api import SIMULCAST
    from broadcaster.simulcast.targets import TargetStatus

    hub = app.get(SIMULCAST)
    if hub is not None:
        hub.subscribe(lambda change: emit(app, simulcast_failed(change.broadcast_id, change.target_id,
                                                                 change.error or "refused"))
                      if change.status is TargetStatus.FAILED else None)


def setup_webhooks(app: web.Application) -> None:
    """Routes and lifecycle; call after the storage context (the hub uses its Redis and live manager)."""
    from broadcaster.webhooks.api import handlers

    app.cleanup_ctx.append(_lifecycle)
    app.on_startup.append(_listen_to_simulcast)  # on_startup runs after the cleanup contexts have started
    create, list_all, delete, deliveries = handlers(lambda a: a[WEBHOOKS])
    app.router.add_post("/api/webhooks", create)
    app.router.add_get("/api/webhooks", list_all)
    app.router.add_delete("/api/webhooks/{id}", delete)
    app.router.add_get("/api/webhooks/{id}/deliveries", deliveries)


__all__ = ["EventType", "WEBHOOKS", "WebhookEvent", "WebhookHub", "emit", "setup_webhooks"]
