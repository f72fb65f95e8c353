"""The node: one aiohttp application owning the store, the live manager, the
RTMP listener(s) and (when configured) the Redis connection.

Every long-lived resource is opened in a ``cleanup_ctx`` generator and closed in
reverse order when the app shuts down.
"""

from __future__ import annotations

import logging
import os
import secrets
import ssl
import sys
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from broadcaster import api, origin, pages
from broadcaster.chat import setup_chat
from broadcaster.config import NodeConfig
from broadcaster.http_errors import error_middleware
from broadcaster.keys import ADMIN_TOKEN, CONFIG, LIVE, METRICS, PLAYLIST_WATCH, STORE
from broadcaster.live import LiveManager
from broadcaster.metrics import NodeMetrics
from broadcaster.metrics_http import metrics, metrics_listener
from broadcaster.moderation_api import setup_moderation
from broadcaster.playback.node import setup_playback
from broadcaster.registry import BroadcastStore, SqliteBroadcastStore
from broadcaster.registry_redis import RedisBroadcastStore
from ingest.hls.watch import PlaylistWatch
from ingest.source import redact
from ingest.whip import WhipOptions, add_whip_routes

log = logging.getLogger("onair.node")

REDIS = web.AppKey("redis", Redis)
RTMP_SERVERS = web.AppKey("rtmp_servers", list)


def admin_token(config: NodeConfig) -> str:
    """The configured admin token, or one generated once and kept in the data dir."""
    if config.admin_token:
        return config.admin_token
    path = config.data_dir / "admin-token"
    if path.exists():
        token = path.read_text().strip()
        log.info("admin token: kept in %s (%s)", path, redact(token))
        return token
    token = "admin_" + secrets.token_urlsafe(24)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    # Printed once, on the console only (not the log), the first time the node starts.
    print(f"onair: generated admin token (saved in {path}): {token}", file=sys.stderr, flush=True)
    return token


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "node": request.app[CONFIG].node_id})


async def _storage(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store: BroadcastStore
    if config.redis_url:
        # a blocking pool: a burst of requests waits for a connection instead of failing
        pool = BlockingConnectionPool.from_url(config.redis_url, max_connections=64, timeout=5,
                                               health_check_interval=5, socket_keepalive=True)
        redis = Redis(connection_pool=pool)
        app[REDIS] = redis
        store = RedisBroadcastStore(redis)
    else:
        store = SqliteBroadcastStore(config.db_path)
    await store.open()
    app[STORE] = store
    live = LiveManager(store, config, app[METRICS], watch=app[PLAYLIST_WATCH])
    app[LIVE] = live
    await live.start()
    yield
    await live.close()
    await store.close()
    if config.redis_url:
        await app[REDIS].aclose()


async def _rtmp(app: web.Application) -> AsyncIterator[None]:
    from ingest.rtmp import RtmpServer

    config = app[CONFIG]
    options = {"read_coalesce": config.read_coalesce}
    servers = [RtmpServer(app[LIVE], host=config.host, port=config.rtmp_port, **options)]
    if config.rtmps_port:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(config.tls_cert, config.tls_key)
        servers.append(RtmpServer(app[LIVE], host=config.host, port=config.rtmps_port, ssl_context=context,
                                  **options))
    for server in servers:
        await server.start()
        log.info("RTMP%s listening on %s:%d", "S" if server is not servers[0] else "", config.host, server.port)
    app[RTMP_SERVERS] = servers
    yield
    for server in reversed(servers):
        await server.close()


def create_app(config: NodeConfig) -> web.Application:
    if not config.node_id:
        from dataclasses import replace
        config = replace(config, node_id="node-" + secrets.token_hex(4))
    app = web.Application(middlewares=[error_middleware], client_max_size=1 << 20)
    app[CONFIG] = config
    app[METRICS] = NodeMetrics()
    app[PLAYLIST_WATCH] = PlaylistWatch()
    app[ADMIN_TOKEN] = admin_token(config)
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_rtmp)
    app.cleanup_ctx.append(metrics_listener)
    # after _storage: WHIP sessions close before the hub they feed
    add_whip_routes(app, lambda: app[LIVE], WhipOptions(ice_hosts=config.ice_host, ice_servers=config.ice_servers))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    api.add_routes(app)
    origin.add_routes(app)
    pages.add_routes(app)
    # moderation before chat: its store opens before the relay and closes after it
    setup_moderation(app)
    setup_chat(app)
    # after both: the gate reads bans from the moderation store and notices from the chat bus
    setup_playback(app)
    return app
