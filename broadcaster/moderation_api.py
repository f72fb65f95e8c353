"""Host moderation on the node: the relay's moderation step, the moderation API and privacy tools.

``setup_moderation(app)`` (idempotent; call it before or after ``setup_chat``)
plugs ``PipelineModerator`` into the chat relay, opens the moderation store
(SQLite under the data dir, or Redis when ``redis_url`` is set) in a
``cleanup_ctx`` and adds the routes.  A host's action goes handler →
``ModerationActions`` → the node's ``HostActions`` (``app[CHAT_HOST]``) → the
chat bus; bans are kept once, there (``moderation.bans``):

    /api/broadcasts/{id}/moderation/...     host token, a moderator token the host granted, or admin
        GET  me                              who the token is (the console checks it)
        GET|PUT settings                     PUT merges any subset of ModerationSettings fields
        DELETE comments/{comment_id}         remove everywhere (comment_removed on every node)
        POST viewers/{viewer_id}/timeout     {"seconds", "reason"?}
        POST|DELETE viewers/{viewer_id}/ban  ban ({"reason"?, "address"?: true}) / unban
        POST viewers/{viewer_id}/purge       remove the viewer's recent comments
        GET  bans
        PUT|DELETE pin                       {"comment_id"} / unpin
        GET  held;  POST held/{held_id}/approve|reject
        GET|POST moderators; DELETE moderators/{grant_id}   (host or admin only)
        GET  audit?after=ID&limit=N
        POST chat-token                      a signed viewer identity for the console's chat socket
        POST revoke-viewer-tokens            host or admin, restricted broadcasts: every viewer token and
                                             playback grant issued so far stops working ({"reason"?})
    GET  /api/viewers/{viewer_id}/export      admin: everything kept about a viewer's comments
    POST /api/viewers/{viewer_id}/erase       admin: right of erasure

Errors are JSON ``{"error"}``: 400 bad input, 401 no/unknown token, 403 a
token without the right, 404 unknown broadcast/held comment/grant.
"""

from __future__ import annotations

import logging
import re
from typing import Any, NamedTuple
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from broadcaster.api import bearer, is_admin, load_broadcast, refuse_caller
from broadcaster.chat import CHAT_HOST, CHAT_MODERATOR, CHAT_NAMES, CHAT_RELAY
from broadcaster.chat.tokens import issue
from broadcaster.http_errors import read_json_object
from broadcaster.keys import CONFIG, REDIS
from broadcaster.registry import Broadcast, Visibility, host_token_matches
from moderation.actions import ActionError, Conflict, InvalidInput, ModerationActions, NotFound
from moderation.audit import AuditLog
from moderation.screening import CommentScreen, SettingsCache
from moderation.store import ModerationStore, open_store
from ingest.redact import redact
from broadcaster.moderation_relay import GrantNames, PipelineModerator

log = logging.getLogger("onair.moderation.api")

MOD_ACTIONS = web.AppKey("moderation_actions", ModerationActions)
MOD_STORE = web.AppKey("moderation_store", ModerationStore)

_VIEWER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ITEM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# --- authorisation ---------------------------------------------------------------------------------

async def authorize(request: web.Request, broadcast: Broadcast, *, host_only: bool = False) -> str:
    """The actor name for the audit log, or 401/403 (a restricted broadcast: 404 as if unknown, to a
    caller whose token is nobody's)."""
    token = bearer(request)
    if token is None:
        raise refuse_caller(broadcast, "missing bearer token")
    if is_admin(request):
        return "admin"
    if host_token_matches(broadcast, token):
        return "host"
    grant = await request.app[MOD_ACTIONS].moderator_for(token)
    if grant is None:
        log.info("moderation %s: refused token %s", broadcast.id, redact(token))
        raise refuse_caller(broadcast, "invalid token for this broadcast")
    if grant.broadcast_id != broadcast.id:
        raise web.HTTPForbidden(text="this moderator token is for another broadcast")
    if host_only:
        raise web.HTTPForbidden(text="only the host or an admin can do this")
    return f"moderator:{grant.label}"


def require_admin_403(request: web.Request) -> None:
    if bearer(request) is None:
        raise web.HTTPUnauthorized(text="missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if not is_admin(request):
        raise web.HTTPForbidden(text="the admin token is required")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _errors(handler: Handler) -> Handler:
    """Action errors as JSON answers with their status and exact message."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except InvalidInput as exc:
            log.info("moderation %s %s: %s", request.method, request.path, exc)
            raise web.HTTPBadRequest(text=str(exc)) from None
        except NotFound as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        except Conflict as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        except ActionError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
    return wrapped


def _path_id(request: web.Request, name: str, pattern: re.Pattern[str] = _ITEM_ID) -> str:
    value = request.match_info[name]
    if not pattern.match(value):
        allowed = "A-Z a-z 0-9 _ . : -" if pattern is _VIEWER_ID else "A-Z a-z 0-9 _ -"
        log.info("moderation %s %s: malformed %s", request.method, request.path[:200], name)
        raise web.HTTPBadRequest(text=f"'{name}' must be 1-64 characters of {allowed}")
    return value


async def _prepare(request: web.Request, *, host_only: bool = False) -> tuple[Broadcast, str, ModerationActions]:
    broadcast = await load_broadcast(request)
    actor = await authorize(request, broadcast, host_only=host_only)
    return broadcast, actor, request.app[MOD_ACTIONS]


class _ItemCall(NamedTuple):
    broadcast: Broadcast
    actor: str
    actions: ModerationActions
    item: str
    body: dict[str, Any]


async def _on_item(request: web.Request, name: str, pattern: re.Pattern[str] = _ITEM_ID) -> _ItemCall:
    """An action on the item the path names: the caller authorised, then the id checked, then the JSON body."""
    broadcast, actor, actions = await _prepare(request)
    item = _path_id(request, name, pattern)
    return _ItemCall(broadcast, actor, actions, item, await read_json_object(request))


# --- handlers ------------------------------------------------------------------------------------------

async def me(request: web.Request) -> web.Response:
    broadcast, actor, _ = await _prepare(request)
    return web.json_response({"actor": actor, "broadcast": {"id": broadcast.id, "title": broadcast.title,
                                                            "visibility": broadcast.visibility.value}})


async def get_settings(request: web.Request) -> web.Response:
    broadcast, _, actions = await _prepare(request)
    return web.json_response((await actions.settings(broadcast.id)).to_dict())


async def put_settings(request: web.Request) -> web.Response:
    broadcast, actor, actions = await _prepare(request)
    body = await read_json_object(request)
    if not body:
        raise web.HTTPBadRequest(text="the body must name at least one setting")
    return web.json_response((await actions.update_settings(broadcast.id, actor, body)).to_dict())


async def delete_comment(request: web.Request) -> web.Response:
    broadcast, actor, actions, comment_id, body = await _on_item(request, "comment_id")
    return web.json_response(await actions.delete_comment(broadcast.id, actor, comment_id, body.get("reason")))


async def timeout_viewer(request: web.Request) -> web.Response:
    broadcast, actor, actions, viewer_id, body = await _on_item(request, "viewer_id", _VIEWER_ID)
    if "seconds" not in body:
        raise web.HTTPBadRequest(text="'seconds' is required")
    return web.json_response(await actions.timeout(broadcast.id, actor, viewer_id, body["seconds"],
                                                   body.get("reason")))


async def ban_viewer(request: web.Request) -> web.Response:
    broadcast, actor, actions, viewer_id, body = await _on_item(request, "viewer_id", _VIEWER_ID)
    return web.json_response(await actions.ban(broadcast.id, actor, viewer_id, body.get("reason"),
                                               body.get("address", False)))


async def unban_viewer(request: web.Request) -> web.Response:
    broadcast, actor, actions, viewer_id, body = await _on_item(request, "viewer_id", _VIEWER_ID)
    return web.json_response(await actions.unban(broadcast.id, actor, viewer_id, body.get("reason")))


async def purge_viewer(request: web.Request) -> web.Response:
    broadcast, actor, actions, viewer_id, body = await _on_item(request, "viewer_id", _VIEWER_ID)
    return web.json_response(await actions.purge(broadcast.id, actor, viewer_id, body.get("reason")))


async def list_bans(request: web.Request) -> web.Response:
    broadcast, _, actions = await _prepare(request)
    return web.json_response({"bans": [b.public() for b in await actions.bans(broadcast.id)]})


async def pin(request: web.Request) -> web.Response:
    broadcast, actor, actions = await _prepare(request)
    body = await read_json_object(request)
    return web.json_response(await actions.pin(broadcast.id, actor, body.get("comment_id")))


async def unpin(request: web.Request) -> web.Response:
    broadcast, actor, actions = await _prepare(request)
    return web.json_response(await actions.unpin(broadcast.id, actor))


async def list_held(request: web.Request) -> web.Response:
    broadcast, _, actions = await _prepare(request)
    return web.json_response({"held": await actions.held(broadcast.id)})


async def approve_held(request: web.Request) -> web.Response:
    broadcast, actor, actions = await _prepare(request)
    return web.json_response(await actions.approve_held(broadcast.id, actor, _path_id(request, "held_id")))


async def reject_held(request: web.Request) -> web.Response:
    broadcast, actor, actions, held_id, body = await _on_item(request, "held_id")
    return web.json_response(await actions.reject_held(broadcast.id, actor, held_id, body.get("reason")))


async def list_moderators(request: web.Request) -> web.Response:
    broadcast, _, actions = await _prepare(request, host_only=True)
    return web.json_response({"moderators": [g.to_dict() for g in await actions.moderators(broadcast.id)]})


async def grant_moderator(request: web.Request) -> web.Response:
    broadcast, actor, actions = await _prepare(request, host_only=True)
    body = await read_json_object(request)
    grant, token = await actions.grant_moderator(broadcast.id, actor, body.get("label"))
    if CHAT_NAMES in request.app:
        request.app[CHAT_NAMES].invalidate(broadcast.id)  # the label is reserved at once on this node
    log.info("moderator %s granted on %s (token %s)", grant.id, broadcast.id, redact(token))
    return web.json_response({**grant.to_dict(), "token": token}, status=201)


async def revoke_moderator(request: web.Request) -> web.Response:
    broadcast, actor, actions = await _prepare(request, host_only=True)
    await actions.revoke_moderator(broadcast.id, actor, _path_id(request, "grant_id"))
    if CHAT_NAMES in request.app:
        request.app[CHAT_NAMES].invalidate(broadcast.id)
    return web.Response(status=204)


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"'{name}' must be an integer") from None
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"'{name}' must be between {low} and {high}")
    return value


async def audit(request: web.Request) -> web.Response:
    broadcast, _, actions = await _prepare(request)
    after = _int_query(request, "after", 0, 0, 2 ** 62)
    limit = _int_query(request, "limit", 100, 1, 1000)
    entries = await actions.audit.entries(broadcast.id, after, limit)
    return web.json_response({"entries": [e.to_dict() for e in entries]})


async def chat_token(request: web.Request) -> web.Response:
    """The identity of the console's own chat socket: the host's or a moderator's, with that verified role."""
    broadcast, actor, _ = await _prepare(request)
    relay = request.app[CHAT_RELAY]
    staff = actor in ("host", "admin")
    name = "host" if staff else actor.split(":", 1)[1][:40]
    viewer_id = "console_" + actor.replace(":", "_")[:40]
    viewer_id = re.sub(r"[^A-Za-z0-9_.:-]", "_", viewer_id)
    epoch = await request.app[MOD_STORE].token_epoch(broadcast.id)
    token = issue(relay.secret, broadcast.id, viewer_id, name, ttl=12 * 3600.0, epoch=epoch,
                  role="host" if staff else "moderator")
    return web.json_response({"token": token, "viewer_id": viewer_id}, status=201)


async def revoke_viewer_tokens(request: web.Request) -> web.Response:
    """Every viewer token and playback grant of a restricted broadcast issued so far stops working."""
    broadcast, actor, actions = await _prepare(request, host_only=True)
    if broadcast.visibility is not Visibility.RESTRICTED:
        raise Conflict("only a restricted broadcast's viewer tokens can be revoked (a public one needs none)")
    body = await read_json_object(request)
    result = await actions.revoke_viewer_tokens(broadcast.id, actor, body.get("reason"))
    log.info("viewer tokens of %s revoked by %s (epoch %d)", broadcast.id, actor, result["epoch"])
    return web.json_response(result)


async def export_viewer(request: web.Request) -> web.Response:
    require_admin_403(request)
    viewer_id = _path_id(request, "viewer_id", _VIEWER_ID)
    return web.json_response(await request.app[MOD_ACTIONS].export_viewer(viewer_id))


async def erase_viewer(request: web.Request) -> web.Response:
    require_admin_403(request)
    viewer_id = _path_id(request, "viewer_id", _VIEWER_ID)
    result = await request.app[MOD_ACTIONS].erase_viewer(viewer_id, "admin")
    from broadcaster.recordings import RECORDINGS  # (imports this module)

    if RECORDINGS in request.app:  # every comment of theirs, also those older than the chat history
        result["replay_comments_erased"] = await request.app[RECORDINGS].erase_viewer(viewer_id)
    log.info("viewer %s erased: %d comments removed from %d broadcasts", viewer_id,
             len(result["removed_comments"]), len(result["broadcasts"]))
    return web.json_response(result)


# --- setup ---------------------------------------------------------------------------------------------

def setup_moderation(app: web.Application, *, settings_ttl: float = 1.0, redis_prefix: str = "onair:mod:") -> None:
    """Plug host moderation into a node app (idempotent).  ``settings_ttl``: how long a
    node may use a broadcast's settings before reading them again (changes made on
    another node apply within it)."""
    # create_app sets moderation up; a caller may still adjust the options before startup
    app[_OPTIONS] = (settings_ttl, redis_prefix)
    if _SET_UP in app:
        return
    app[_SET_UP] = True
    moderator = PipelineModerator()
    app[CHAT_MODERATOR] = moderator  # the relay reads it when it starts

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        ttl, prefix = app[_OPTIONS]
        store = open_store(config.redis_url, config.data_dir, retention=config.chat_retention, prefix=prefix,
                           redis=app.get(REDIS))
        await store.open()
        cache = SettingsCache(store, ttl=ttl)
        host = app[CHAT_HOST]
        # bans a node from before kept here move into the chat, written there before they go from here
        for ban in await store.legacy_bans():
            await host.bus.ban(ban)
        await store.drop_legacy_bans()
        actions = ModerationActions(store, host, cache)
        moderator.screen = CommentScreen(store, cache, AuditLog(store), shared=store.shared_limits())
        if CHAT_NAMES in app:
            app[CHAT_NAMES].source = GrantNames(store)  # moderators' names are reserved in the chat
        app[MOD_STORE] = store
        app[MOD_ACTIONS] = actions
        log.info("moderation store: %s", "redis" if config.redis_url else "sqlite")
        yield
        moderator.screen = None
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    base = "/api/broadcasts/{id}/moderation"
    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/me", me),
        ("GET", "/settings", get_settings),
        ("PUT", "/settings", put_settings),
        ("DELETE", "/comments/{comment_id}", delete_comment),
        ("POST", "/viewers/{viewer_id}/timeout", timeout_viewer),
        ("POST", "/viewers/{viewer_id}/ban", ban_viewer),
        ("DELETE", "/viewers/{viewer_id}/ban", unban_viewer),
        ("POST", "/viewers/{viewer_id}/purge", purge_viewer),
        ("GET", "/bans", list_bans),
        ("PUT", "/pin", pin),
        ("DELETE", "/pin", unpin),
        ("GET", "/held", list_held),
        ("POST", "/held/{held_id}/approve", approve_held),
        ("POST", "/held/{held_id}/reject", reject_held),
        ("GET", "/moderators", list_moderators),
        ("POST", "/moderators", grant_moderator),
        ("DELETE", "/moderators/{grant_id}", revoke_moderator),
        ("GET", "/audit", audit),
        ("POST", "/chat-token", chat_token),
        ("POST", "/revoke-viewer-tokens", revoke_viewer_tokens),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, base + path, _errors(handler))
    app.router.add_get("/api/viewers/{viewer_id}/export", _errors(export_viewer))
    app.router.add_post("/api/viewers/{viewer_id}/erase", _errors(erase_viewer))


_SET_UP = web.AppKey("moderation_set_up", bool)
_OPTIONS = web.AppKey("moderation_options", tuple)

__all__ = ["MOD_ACTIONS", "MOD_STORE", "PipelineModerator", "authorize", "setup_moderation"]
