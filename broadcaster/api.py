"""The broadcasts API: create, list, read, delete, rotate the key, end.

Admin calls carry ``Authorization: Bearer <admin token>``; reading one
broadcast also accepts its host token.  Secrets are compared in constant time.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time

from aiohttp import web

from broadcaster.http_errors import read_json_object
from broadcaster.key_rotation import announce_rotation
from broadcaster.keys import ADMIN_TOKEN, CONFIG, LIVE, STORE
from broadcaster.playback.access import Unavailable
from broadcaster.playback.gate import PLAYBACK
from broadcaster.playback.grants import GRANT_PARAM, Refused
from broadcaster.registry import (Broadcast, Status, Visibility, hash_token, host_token_matches, make_broadcast,
                                  new_host_token, new_stream_key, secret_matches)
from broadcaster.studio import details
from broadcaster.webhooks import emit
from broadcaster.webhooks.events import broadcast_created, status_event
from dataclasses import replace

log = logging.getLogger("onair.api")


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def is_admin(request: web.Request) -> bool:
    token = bearer(request)
    return token is not None and secret_matches(request.app[ADMIN_TOKEN], token)


def require_admin(request: web.Request) -> None:
    if bearer(request) is None:
        raise web.HTTPUnauthorized(text="missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if not is_admin(request):
        raise web.HTTPUnauthorized(text="invalid admin token", headers={"WWW-Authenticate": "Bearer"})


def refuse_caller(broadcast: Broadcast, message: str) -> web.HTTPException:
    """A caller without the right token: 401 saying why; for a restricted broadcast the very 404 an
    unknown id gets, so probing with a made-up token tells nothing (docs/playback-auth.md)."""
    if broadcast.visibility is Visibility.RESTRICTED:
        return web.HTTPNotFound(text=f"no broadcast {broadcast.id!r}")
    return web.HTTPUnauthorized(text=message, headers={"WWW-Authenticate": "Bearer"})


async def load_broadcast(request: web.Request) -> Broadcast:
    broadcast = await request.app[STORE].get(request.match_info["id"])
    if broadcast is None:
        raise web.HTTPNotFound(text=f"no broadcast {request.match_info['id']!r}")
    return broadcast


async def require_host(request: web.Request) -> Broadcast:
    """The broadcast, for a caller with its host token or the admin token; anyone else is refused."""
    broadcast = await load_broadcast(request)
    token = bearer(request)
    if token is None:
        raise refuse_caller(broadcast, "missing bearer token")
    if not (is_admin(request) or host_token_matches(broadcast, token)):
        raise refuse_caller(broadcast, "admin or host token required")
    return broadcast


async def grant_admits(request: web.Request, broadcast: Broadcast, grant: str) -> bool:
    """Whether a playback grant admits a viewer to this restricted broadcast.  False for one not issued
    for it (the caller then gets the 404 an unknown id gets); a 403 saying why for one issued for it but
    expired, revoked or banned; a 503 while playback authorisation is unavailable."""
    gate = request.app[PLAYBACK]
    try:
        state = await gate.state(broadcast.id)
    except Unavailable:
        raise web.HTTPServiceUnavailable(text="playback authorisation is unavailable; try again") from None
    try:
        gate.check_playlist(state, broadcast.id, {GRANT_PARAM: grant}, time.time())
    except Refused as exc:
        if exc.issued_for_it:
            raise web.HTTPForbidden(text=exc.reason) from None
        return False
    return True


def base_urls(request: web.Request) -> tuple[str, str]:
    """(http base, rtmp base) as a client of this node should use them."""
    config = request.app[CONFIG]
    host = config.public_host or request.host
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    rtmp_base = f"rtmp://{hostname}:{config.rtmp_port}/live"
    if config.public_url:  # the edge's (or a CDN's): the same whichever node answers
        return config.public_url.rstrip("/"), rtmp_base
    return f"{request.scheme}://{host}", rtmp_base


def describe(request: web.Request, broadcast: Broadcast, *, secrets: bool, host_token: str | None = None
             ) -> dict[str, object]:
    """The broadcast as the API shows it; ``secrets`` adds the stream key, ``host_token`` (only known
    when it was just created or rotated: the store keeps its hash) the host token."""
    http_base, rtmp_base = base_urls(request)
    doc: dict[str, object] = {
        "id": broadcast.id,
        "title": broadcast.title,
        "visibility": broadcast.visibility.value,
        "status": broadcast.status.value,
        "created_at": broadcast.created_at,
        "started_at": broadcast.started_at,
        "ended_at": broadcast.ended_at,
        "rtmp_url": rtmp_base,
        "hls_url": f"{http_base}/hls/{broadcast.id}/master.m3u8",
        "watch_url": f"{http_base}/watch/{broadcast.id}",
        "console_url": f"{http_base}/console/{broadcast.id}",
        "golive_url": f"{http_base}/golive/{broadcast.id}",
        "whip_url": f"{http_base}/whip/{broadcast.id}",
        "description": broadcast.description,
        "scheduled_start": broadcast.scheduled_start,
        "poster_url": f"{http_base}/posters/{broadcast.id}.jpg?v={broadcast.poster}" if broadcast.poster else None,
    }
    if secrets:
        doc["stream_key"] = broadcast.stream_key
    if host_token is not None:
        doc["host_token"] = host_token
    live = request.app[LIVE].live_info(broadcast.id)
    if live is not None and broadcast.status in (Status.LIVE, Status.RECONNECTING):
        doc["live"] = live
    return doc


async def create(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json_object(request)
    try:
        title = details.title(body.get("title"))
    except details.DetailsError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    visibility_raw = body.get("visibility", "public")
    try:
        visibility = Visibility(visibility_raw)
    except ValueError:
        raise web.HTTPBadRequest(text="'visibility' must be 'public' or 'restricted'") from None
    try:
        description = details.description(body.get("description"))
        scheduled_start = details.scheduled_start(body.get("scheduled_start"))
    except details.DetailsError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    broadcast, host_token = make_broadcast(title, visibility, origin=request.app[CONFIG].node_id,
                                           description=description, scheduled_start=scheduled_start)
    await request.app[STORE].create(broadcast)
    emit(request.app, broadcast_created(broadcast.id, broadcast.title, broadcast.scheduled_start))
    log.info("broadcast %s created (%s)", broadcast.id, visibility.value)
    return web.json_response(describe(request, broadcast, secrets=True, host_token=host_token), status=201)


async def list_all(request: web.Request) -> web.Response:
    require_admin(request)
    broadcasts = await request.app[STORE].list()
    return web.json_response({"broadcasts": [describe(request, b, secrets=True) for b in broadcasts]})


async def read_one(request: web.Request) -> web.Response:
    broadcast = await load_broadcast(request)
    token = bearer(request)
    if token is None:
        raise refuse_caller(broadcast, "missing bearer token")
    admin = is_admin(request)
    if not admin and not host_token_matches(broadcast, token):
        raise refuse_caller(broadcast, "invalid token for this broadcast")
    doc = describe(request, broadcast, secrets=admin)
    from broadcaster.simulcast import targets_of  # (the simulcast API imports this module)
    doc["simulcast"] = await targets_of(request.app, broadcast.id)
    return web.json_response(doc)


async def viewable(request: web.Request) -> Broadcast:
    """The broadcast as a viewer may see it (no secrets).  A restricted broadcast answers only a request
    with a playback grant (``Authorization: Bearer <grant>`` or ``?grant=``); to any other it is unknown, in
    the same words.  A grant genuinely issued for it but expired, revoked or banned gets a 403 saying so."""
    broadcast = await request.app[STORE].get(request.match_info["id"])
    if broadcast is not None and broadcast.visibility is Visibility.RESTRICTED:
        grant = bearer(request) or request.query.get(GRANT_PARAM, "")
        if not await grant_admits(request, broadcast, grant):
            broadcast = None
    if broadcast is None:
        raise web.HTTPNotFound(text=f"no broadcast {request.match_info['id']!r}")
    return broadcast


async def read_public(request: web.Request) -> web.Response:
    """What the watch page may know: no secrets (:func:`viewable` says who may)."""
    return web.json_response(describe(request, await viewable(request), secrets=False))


async def delete(request: web.Request) -> web.Response:
    require_admin(request)
    broadcast = await load_broadcast(request)
    if broadcast.status in (Status.LIVE, Status.RECONNECTING):
        raise web.HTTPConflict(text=f"broadcast {broadcast.id} is {broadcast.status.value}; end it first")
    await request.app[STORE].delete(broadcast.id)
    from broadcaster.recordings import RECORDINGS  # (imports this module)

    if RECORDINGS in request.app:  # media, MP4, poster, chat replay, chat history, moderation archive
        await request.app[RECORDINGS].delete(broadcast.id, "admin", tombstone=False)
    from broadcaster.simulcast import SIMULCAST  # its targets' stream keys go with it
    await request.app[SIMULCAST].store.delete_all(broadcast.id)
    hls_dir = request.app[CONFIG].hls_dir / broadcast.id
    await asyncio.to_thread(shutil.rmtree, hls_dir, True)
    log.info("broadcast %s deleted", broadcast.id)
    return web.Response(status=204)


async def rotate_key(request: web.Request) -> web.Response:
    require_admin(request)
    broadcast = await load_broadcast(request)
    if broadcast.status is Status.ENDED:
        raise web.HTTPConflict(text=f"broadcast {broadcast.id} has ended")
    rotated = replace(broadcast, stream_key=new_stream_key(broadcast.id))
    await request.app[STORE].put(rotated)
    log.info("stream key of %s rotated", broadcast.id)
    await announce_rotation(request.app, broadcast.id)  # the publisher with the old key is dropped
    return web.json_response(describe(request, rotated, secrets=True))


async def rotate_host_token(request: web.Request) -> web.Response:
    require_admin(request)
    broadcast = await load_broadcast(request)
    host_token = new_host_token()
    rotated = replace(broadcast, host_token_hash=hash_token(host_token))
    await request.app[STORE].put(rotated)
    log.info("host token of %s rotated", broadcast.id)
    return web.json_response(describe(request, rotated, secrets=True, host_token=host_token))


async def end(request: web.Request) -> web.Response:
    """End now (no reconnect grace).  ``?force=true`` (admin): in any state, wherever it is live, without
    waiting for the transcoder to flush; an ended broadcast stays ended (200)."""
    broadcast = await load_broadcast(request)
    token = bearer(request)
    if token is None or not (is_admin(request) or host_token_matches(broadcast, token)):
        raise refuse_caller(broadcast, "admin or host token required")
    force = request.query.get("force", "").lower() in ("1", "true", "yes")
    if force:
        if not is_admin(request):
            raise web.HTTPForbidden(text="force=true needs the admin token")
        await request.app[LIVE].force_end(broadcast.id)
    elif broadcast.status is Status.ENDED:
        raise web.HTTPConflict(text=f"broadcast {broadcast.id} has already ended")
    elif not await request.app[LIVE].end(broadcast.id, "ended through the API"):
        if broadcast.status is not Status.IDLE:
            raise web.HTTPConflict(text=f"broadcast {broadcast.id} is {broadcast.status.value} on node "
                                        f"{broadcast.origin or '?'}; end it there, or with ?force=true (admin) here")
        # never went live: ending it just closes it
        await request.app[STORE].put(replace(broadcast, status=Status.ENDED, ended_at=time.time()))
        emit(request.app, status_event(broadcast.id, Status.ENDED.value, broadcast.title))
    updated = await request.app[STORE].get(broadcast.id)
    assert updated is not None
    return web.json_response(describe(request, updated, secrets=False))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/broadcasts", create)
    app.router.add_get("/api/broadcasts", list_all)
    app.router.add_get("/api/broadcasts/{id}", read_one)
    app.router.add_delete("/api/broadcasts/{id}", delete)
    app.router.add_post("/api/broadcasts/{id}/rotate-key", rotate_key)
    app.router.add_post("/api/broadcasts/{id}/rotate-host-token", rotate_host_token)
    app.router.add_post("/api/broadcasts/{id}/end", end)
    app.router.add_get("/api/public/broadcasts/{id}", read_public)
