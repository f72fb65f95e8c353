"""The studio's own API: a broadcast's live health, its details edited, and which broadcast a host token opens.

``GET /api/broadcasts/{id}/health`` (admin, or the broadcast's host token):
:func:`broadcaster.studio.health.health`.  ``PATCH /api/broadcasts/{id}``
(admin or host): title, description, scheduled start (the schedule only
before it goes live).  ``GET /api/host/broadcast`` (a host token): the
broadcast that token is the host of, so the studio opens it alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from aiohttp import web

from broadcaster.api import bearer, describe, is_admin, load_broadcast, refuse_caller
from broadcaster.bus import BusUnavailable
from broadcaster.keys import CHAT_BUS, CONFIG, LIVE, STORE
from broadcaster.http_errors import read_json_object
from broadcaster.registry import Status, host_token_matches
from broadcaster.studio import details
from broadcaster.studio import health as figures

log = logging.getLogger("onair.studio")


async def read_health(request: web.Request) -> web.Response:
    broadcast = await load_broadcast(request)
    token = bearer(request)
    if token is None or not (is_admin(request) or host_token_matches(broadcast, token)):
        raise refuse_caller(broadcast, "admin or host token required")
    now = time.time()
    viewers = comments = 0
    from broadcaster.chat import CHAT_RELAY

    relay = request.app.get(CHAT_RELAY)
    room = relay.rooms.get(broadcast.id) if relay is not None else None
    if room is not None:
        viewers = room.viewer_total
    bus = request.app.get(CHAT_BUS)
    if bus is not None:
        try:
            comments = figures.comments_per_minute(await bus.history(broadcast.id), now)
        except BusUnavailable:
            pass
    live = request.app[LIVE].live_info(broadcast.id)
    doc = figures.health(broadcast.status.value, live, segment_target=request.app[CONFIG].segment_target,
                         viewers=viewers, comments=comments, now=now)
    return web.json_response(doc, headers={"Cache-Control": "no-store"})


async def update(request: web.Request) -> web.Response:
    broadcast = await load_broadcast(request)
    token = bearer(request)
    if token is None or not (is_admin(request) or host_token_matches(broadcast, token)):
        raise refuse_caller(broadcast, "admin or host token required")
    body = await read_json_object(request)
    unknown = sorted(set(body) - set(details.EDITABLE))
    if unknown or not body:
        raise web.HTTPBadRequest(text=f"only {', '.join(details.EDITABLE)} can be changed"
                                      + (f"; not {', '.join(repr(k[:40]) for k in unknown[:5])}" if unknown else ""))
    try:
        changes = {name: getattr(details, name)(body[name]) for name in details.EDITABLE if name in body}
    except details.DetailsError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    current = await request.app[STORE].get(broadcast.id) or broadcast
    if "scheduled_start" in changes and current.status is not Status.IDLE:
        raise web.HTTPConflict(text=f"broadcast {broadcast.id} is {current.status.value}: its schedule is past")
    updated = replace(current, **changes)
    await request.app[STORE].put(updated)
    log.info("broadcast %s edited (%s)", broadcast.id, ", ".join(changes))
    return web.json_response(describe(request, updated, secrets=is_admin(request)))


async def host_broadcast(request: web.Request) -> web.Response:
    token = bearer(request)
    if token is None:
        raise web.HTTPUnauthorized(text="missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if token.startswith("host_"):
        for broadcast in await request.app[STORE].list():
            if host_token_matches(broadcast, token):
                return web.json_response(describe(request, broadcast, secrets=False))
    raise web.HTTPUnauthorized(text="not a host token of any broadcast", headers={"WWW-Authenticate": "Bearer"})


def add_routes(app: web.Application) -> None:
    from broadcaster.studio import posters

    app.router.add_get("/api/broadcasts/{id}/health", read_health)
    app.router.add_get("/api/host/broadcast", host_broadcast)
    app.router.add_patch("/api/broadcasts/{id}", update)
    posters.add_routes(app)
