"""The node: one aiohttp application owning the store, the live manager, the
RTMP listener(s) and (when configured) the Redis connection.

Every long-lived resource is opened in a ``cleanup_ctx`` generator and closed in
reverse order when the app shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import replace

from aiohttp import web

from broadcaster import api, datadir, origin, pages
from broadcaster.chat import CHAT_HOST, HostActions, open_chat_state, setup_chat
from broadcaster.caps import CAPS, caps_middleware, node_caps, rtmp_limits
from broadcaster.config import ConfigError, NodeConfig, weak_token
from broadcaster.hls_forward import setup_hls_forward
from broadcaster.http_errors import error_middleware
from broadcaster.key_rotation import setup_key_rotation
from broadcaster.keys import ADMIN_TOKEN, CHAT_BUS, CONFIG, LIVE, METRICS, PLAYLIST_WATCH, REDIS, STORE
from broadcaster.leases import Leases, LocalLeases, RedisLeases
from broadcaster.live import LiveManager
from broadcaster.metrics import NodeMetrics
from broadcaster.metrics_http import metrics, metrics_listener
from broadcaster.moderation_api import setup_moderation
from broadcaster.orphans import OrphanSweeper
from broadcaster.playback.node import setup_playback
from broadcaster.recordings import setup_recordings
from broadcaster.registry import BroadcastStore, SqliteBroadcastStore
from broadcaster.registry_redis import RedisBroadcastStore
from broadcaster.simulcast import setup_simulcast
from broadcaster.state_metrics import StateCollector
from broadcaster.storage import open_redis
from broadcaster.studio.api import add_routes as studio_routes
from broadcaster.webhooks import setup_webhooks
from ingest.hls.watch import PlaylistWatch
from ingest.whip import WhipOptions, add_whip_routes
from ingest.redact import redact

log = logging.getLogger("onair.node")

RTMP_SERVERS = web.AppKey("rtmp_servers", list)


def admin_token(config: NodeConfig) -> str:
    """The configured admin token, or one generated once and kept in the data dir."""
    if config.admin_token:
        return config.admin_token
    path = config.data_dir / "admin-token"
    if path.exists():
        token = path.read_text().strip()
        if (problem := weak_token(token)) is not None:
            raise ConfigError(f"admin token in {path} is too weak: {problem}; delete the file to have one generated")
        log.info("admin token: kept in %s (%s)", path, redact(token))
        return token
    token = "admin_" + secrets.token_urlsafe(24)
    datadir.write_private(path, (token + "\n").encode())
    # Printed once, on the console only (not the log), the first time the node starts.
    print(f"onair: generated admin token (saved in {path}): {token}", file=sys.stderr, flush=True)
    return token


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "node": request.app[CONFIG].node_id})


async def _storage(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store: BroadcastStore
    leases: Leases
    sweeper: asyncio.Task[None] | None = None
    if config.redis_url:
        # the node's one Redis client: the chat bus and the moderation store take it too
        redis = open_redis(config.redis_url)
        app[REDIS] = redis
        store = RedisBroadcastStore(redis)
        leases = RedisLeases(redis, config.node_id, ttl=config.lease_ttl)
    else:
        store = SqliteBroadcastStore(config.db_path)
        leases = LocalLeases(config.node_id)
    await store.open()
    app[STORE] = store
    # the chat's shared state (comments, held queue, bans): moderation and the relay both act on it
    bus = open_chat_state(app, config)
    await bus.start()
    app[CHAT_BUS] = bus
    app[CHAT_HOST] = HostActions(bus)
    live = LiveManager(store, config, app[METRICS], watch=app[PLAYLIST_WATCH], leases=leases)
    app[LIVE] = live
    await live.start()
    if isinstance(leases, RedisLeases):
        orphans = OrphanSweeper(store, leases, live.serves, grace=config.orphan_grace, announce=live.announce)
        sweeper = asyncio.create_task(orphans.run(), name="orphan-sweeper")
    yield
    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    await live.close()
    await bus.close()
    await store.close()
    if config.redis_url:
        await app[REDIS].aclose()


async def _rtmp(app: web.Application) -> AsyncIterator[None]:
    from ingest.rtmp import RtmpServer

    config = app[CONFIG]
    limits = rtmp_limits(config)  # one for every listener, as before

    def listener(port: int, context: ssl.SSLContext | None = None) -> RtmpServer:
        return RtmpServer(app[LIVE], host=config.host, port=port, ssl_context=context,
                          read_coalesce=config.read_coalesce, limits=limits, admission=app[CAPS].rtmp)

    servers = [listener(config.rtmp_port)]
    if config.rtmps_port:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(config.tls_cert, config.tls_key)
        servers.append(listener(config.rtmps_port, context))
    for server in servers:
        await server.start()
        log.info("RTMP%s listening on %s:%d", "S" if server is not servers[0] else "", config.host, server.port)
    app[RTMP_SERVERS] = servers
    yield
    for server in reversed(servers):
        await server.close()


def create_app(config: NodeConfig) -> web.Application:
    datadir.prepare(config.data_dir)
    config = replace(config, node_id=datadir.node_id(config.data_dir, config.node_id))
    app = web.Application(middlewares=[caps_middleware, error_middleware], client_max_size=1 << 20)
    app[CONFIG] = config
    app[METRICS] = NodeMetrics()
    app[CAPS] = node_caps(config, app[METRICS].registry)
    app[METRICS].registry.register(StateCollector(app))
    app[PLAYLIST_WATCH] = PlaylistWatch()
    app[ADMIN_TOKEN] = admin_token(config)
    app.cleanup_ctx.append(_storage)
    setup_hls_forward(app, REDIS)  # after _storage: it reads the registry and Redis
    setup_webhooks(app)  # after _storage: it uses its Redis and live manager
    app.cleanup_ctx.append(_rtmp)
    app.cleanup_ctx.append(metrics_listener)
    # after _storage: WHIP sessions close before the hub they feed
    add_whip_routes(app, lambda: app[LIVE], WhipOptions(ice_hosts=config.ice_host, ice_servers=config.ice_servers))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    api.add_routes(app)
    origin.add_routes(app)
    pages.add_routes(app)
    studio_routes(app)
    # moderation before chat: its store opens before the relay and closes after it
    setup_moderation(app)
    setup_chat(app)
    # after both: the gate reads bans from the moderation store and notices from the chat bus
    setup_playback(app)
    setup_key_rotation(app)  # after the chat: it listens on the chat's bus
    setup_recordings(app)  # after chat and moderation: it records the relay's comments, erases both
    setup_simulcast(app)  # after the storage: it taps the live manager
    return app
