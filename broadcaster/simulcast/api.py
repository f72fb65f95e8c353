"""``/api/broadcasts/{id}/simulcast``: add, list, enable/disable, delete a broadcast's targets.

Admin token or the broadcast's host token (a restricted broadcast answers a
wrong token with the 404 an unknown id gets).  The stream key is accepted on
creation and never returned or logged; every answer carries the target's
status on this node (``idle`` when the broadcast is not live here).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from aiohttp import web

from broadcaster.api import require_host
from broadcaster.http_errors import read_json_object
from broadcaster.registry import Broadcast
from broadcaster.simulcast.hub import SimulcastHub
from broadcaster.simulcast.targets import MAX_TARGETS, InvalidTarget, Target, check_name, new_target

log = logging.getLogger("onair.simulcast")

SIMULCAST = web.AppKey("simulcast", SimulcastHub)
#: a target's whole JSON body is small; anything larger is refused (413)
MAX_BODY = 8 * 1024


def describe(hub: SimulcastHub, target: Target) -> dict[str, object]:
    return {**target.public(), **hub.runtime(target.broadcast_id, target.id)}


async def targets_of(app: web.Application, broadcast_id: str) -> list[dict[str, object]]:
    """Every target of a broadcast as the API shows it (also in ``GET /api/broadcasts/{id}``)."""
    hub = app[SIMULCAST]
    return [describe(hub, t) for t in await hub.store.list(broadcast_id)]


async def _target(request: web.Request, broadcast: Broadcast) -> Target:
    target_id = request.match_info["target"]
    for target in await request.app[SIMULCAST].store.list(broadcast.id):
        if target.id == target_id:
            return target
    raise web.HTTPNotFound(text=f"no simulcast target {target_id!r} on broadcast {broadcast.id}")


async def create(request: web.Request) -> web.Response:
    broadcast = await require_host(request)
    body = await read_json_object(request, MAX_BODY)
    unknown = set(body) - {"url", "stream_key", "name", "enabled"}
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown field(s): {', '.join(sorted(repr(u[:40]) for u in unknown))}")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise web.HTTPBadRequest(text="'enabled' must be true or false")
    try:
        target = new_target(broadcast.id, body.get("url"), body.get("stream_key"), body.get("name"))  # type: ignore[arg-type]
    except InvalidTarget as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    hub = request.app[SIMULCAST]
    if len(await hub.store.list(broadcast.id)) >= MAX_TARGETS:
        raise web.HTTPConflict(text=f"broadcast {broadcast.id} already has {MAX_TARGETS} simulcast targets")
    target = replace(target, enabled=enabled)
    await hub.store.put(target)
    log.info("simulcast target %s added to %s: %s (%s)", target.id, broadcast.id, target.name, target.url)
    await hub.refresh(broadcast.id)
    return web.json_response(describe(hub, target), status=201)


async def list_targets(request: web.Request) -> web.Response:
    broadcast = await require_host(request)
    return web.json_response({"targets": await targets_of(request.app, broadcast.id)})


async def update(request: web.Request) -> web.Response:
    """``PATCH {"enabled": bool, "name": str}``: enable/disable without deleting, rename."""
    broadcast = await require_host(request)
    body = await read_json_object(request, MAX_BODY)
    unknown = set(body) - {"enabled", "name"}
    if unknown:
        raise web.HTTPBadRequest(text="only 'enabled' and 'name' can be changed; delete and add the target to "
                                      "change its URL or key")
    target = await _target(request, broadcast)
    changes: dict[str, object] = {}
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise web.HTTPBadRequest(text="'enabled' must be true or false")
        changes["enabled"] = body["enabled"]
    if "name" in body:
        try:
            changes["name"] = check_name(body["name"], target.name)
        except InvalidTarget as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
    updated = replace(target, **changes)  # type: ignore[arg-type]
    hub = request.app[SIMULCAST]
    await hub.store.put(updated)
    log.info("simulcast target %s of %s %s", target.id, broadcast.id,
             "enabled" if updated.enabled else "disabled")
    await hub.refresh(broadcast.id)
    return web.json_response(describe(hub, updated))


async def delete(request: web.Request) -> web.Response:
    broadcast = await require_host(request)
    target = await _target(request, broadcast)
    hub = request.app[SIMULCAST]
    await hub.store.delete(broadcast.id, target.id)
    log.info("simulcast target %s removed from %s", target.id, broadcast.id)
    await hub.refresh(broadcast.id)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/broadcasts/{id}/simulcast", create)
    app.router.add_get("/api/broadcasts/{id}/simulcast", list_targets)
    app.router.add_patch("/api/broadcasts/{id}/simulcast/{target}", update)
    app.router.add_delete("/api/broadcasts/{id}/simulcast/{target}", delete)
