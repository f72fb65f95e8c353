"""The live chat/reactions relay: WebSocket endpoint, fan-out and moderation hook.

``setup_chat(app)`` adds ``/ws/{broadcast_id}`` and
``POST /api/broadcasts/{id}/viewer-tokens`` and owns the relay in a
``cleanup_ctx``; open sockets are closed with GOING_AWAY on shutdown.  The bus
and the host actions over it (``app[CHAT_BUS]``, ``app[CHAT_HOST]``) are opened
with the node's other shared state (``open_chat_state``, called by
``broadcaster/app.py``), before moderation and the relay, which both use them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace

from aiohttp import web

from broadcaster.bus import Bus, open_bus
from broadcaster.chat.api import viewer_token_handler
from broadcaster.chat.host import HostActions
from broadcaster.chat.metrics import ChatMetrics
from broadcaster.chat.moderation import Action, CommentModerator, ModerationOutcome, NoModeration
from broadcaster.chat.names import ModeratorNames, ReservedNames
from broadcaster.chat.quotas import AddressLimits
from broadcaster.chat.relay import ChatRelay, ChatSettings
from broadcaster.chat.ws import ChatEndpoint
from broadcaster.config import NodeConfig
from broadcaster.keys import CHAT_BUS, CONFIG, METRICS, REDIS
from broadcaster.playback.gate import PLAYBACK
from broadcaster.webhooks import emit
from broadcaster.webhooks.events import comment_held

log = logging.getLogger("onair.chat")

CHAT_RELAY = web.AppKey("chat_relay", ChatRelay)
#: set before startup to plug moderation in (default: NoModeration)
CHAT_MODERATOR = web.AppKey("chat_moderator", CommentModerator)
CHAT_SETTINGS = web.AppKey("chat_settings", ChatSettings)
#: the names only verified identities may use (moderation plugs its moderators' names in)
CHAT_NAMES = web.AppKey("chat_names", ReservedNames)
_ENDPOINT = web.AppKey("chat_endpoint", ChatEndpoint)
#: the node's one HostActions over the bus: the moderation API's way into the chat, and the relay's
CHAT_HOST = web.AppKey("chat_host", HostActions)


def open_chat_state(app: web.Application, config: NodeConfig) -> Bus:
    """The chat's bus for this node (not started), over the node's Redis client when it has one;
    embedded, its held queue and bans are files of the data dir."""
    return open_bus(config.redis_url, prefix=app[CHAT_SETTINGS].redis_prefix, history_size=config.chat_history,
                    retention=config.chat_retention, secret_path=config.data_dir / "chat-secret",
                    held_path=config.data_dir / "chat-held.json", bans_path=config.data_dir / "chat-bans.json",
                    redis=app.get(REDIS))


def setup_chat(app: web.Application, *, moderator: CommentModerator | None = None,
               settings: ChatSettings | None = None) -> None:
    """Add the chat routes and lifecycle to a node app built by ``create_app``."""
    if CHAT_SETTINGS in app:
        # already set up by create_app: only let the caller adjust settings and moderator before startup
        if settings is not None:
            app[CHAT_SETTINGS] = settings
        if moderator is not None:
            app[CHAT_MODERATOR] = moderator
        return
    app[CHAT_SETTINGS] = settings or ChatSettings()
    app[CHAT_NAMES] = ReservedNames()
    if moderator is not None:
        app[CHAT_MODERATOR] = moderator
    holder: dict[str, ChatEndpoint] = {}

    async def ws_handler(request: web.Request) -> web.StreamResponse:
        return await holder["endpoint"].handle(request)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        chat_settings = app[CHAT_SETTINGS]
        if chat_settings.address_limits is None:
            chat_settings = replace(chat_settings, address_limits=AddressLimits.from_rates(
                config.chat_sockets_per_address, config.chat_joins_per_address, config.chat_comments_per_address,
                config.chat_reactions_per_address))
        bus = app[CHAT_BUS]
        metrics = ChatMetrics(app[METRICS].registry if METRICS in app else None)
        relay = ChatRelay(bus, config.node_id, app.get(CHAT_MODERATOR) or NoModeration(),
                          chat_settings, metrics, host=app[CHAT_HOST])
        await relay.start(secrets.token_bytes(32))
        relay.incoming.on_held = lambda bid, held: emit(app, comment_held(bid, held.id,
                                                                          str(held.comment.get("reason", ""))))
        # A restricted broadcast's chat also honours its viewer-token epoch and bans (the playback
        # gate's cached state; the gate starts after the chat, so it is looked up when a viewer comes).
        holder["endpoint"] = ChatEndpoint(relay, app[CHAT_NAMES],
                                          admit=lambda identity: app[PLAYBACK].admit_viewer(identity))
        app[CHAT_RELAY] = relay
        app[_ENDPOINT] = holder["endpoint"]  # read by broadcaster/state_metrics.py
        log.info("chat relay on %s bus (node %s)", "redis" if config.redis_url else "memory", config.node_id)
        yield
        await relay.close()

    async def on_shutdown(app: web.Application) -> None:
        # Before the server waits for handlers: open sockets would hold it up.
        if CHAT_RELAY in app:
            await app[CHAT_RELAY].close_viewers()
        if "endpoint" in holder:
            await holder["endpoint"].close_all()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/ws/{broadcast_id}", ws_handler)
    app.router.add_post("/api/broadcasts/{id}/viewer-tokens",
                        viewer_token_handler(lambda: app[CHAT_RELAY].secret, app[CHAT_NAMES]))


__all__ = ["Action", "CHAT_BUS", "CHAT_HOST", "CHAT_MODERATOR", "CHAT_NAMES", "CHAT_RELAY", "CHAT_SETTINGS", "ChatRelay",
           "ChatSettings", "HostActions", "CommentModerator", "ModerationOutcome", "ModeratorNames", "NoModeration", "ReservedNames",
           "open_chat_state", "setup_chat"]
