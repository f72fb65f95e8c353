"""``/api/webhooks``: register, list and remove endpoints, read their delivery log (admin token)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from broadcaster.api import require_admin
from broadcaster.http_errors import read_json_object
from broadcaster.webhooks.delivery import WebhookHub
from broadcaster.webhooks.events import EVENT_TYPES
from broadcaster.webhooks.signing import new_secret
from broadcaster.webhooks.store import Endpoint
from broadcaster.webhooks.urls import validate_url

MAX_ENDPOINTS = 50



def _events(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise web.HTTPBadRequest(text="'events' must be a non-empty list of event names")
    if not all(isinstance(e, str) for e in raw):
        raise web.HTTPBadRequest(text="'events' must list event names (strings)")
    unknown = sorted(set(raw) - EVENT_TYPES)
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown event(s) {', '.join(repr(u[:40]) for u in unknown[:5])}; "
                                      f"known: {', '.join(sorted(EVENT_TYPES))}")
    return tuple(dict.fromkeys(raw))


Handler = Callable[[web.Request], Awaitable[web.Response]]


def handlers(hub_of: Callable[[web.Application], WebhookHub]) -> tuple[Handler, Handler, Handler, Handler]:
    """The four handlers, reading the hub with ``hub_of`` (the app key lives in the package's ``__init__``)."""
    async def create(request: web.Request) -> web.Response:
        require_admin(request)
        body = await read_json_object(request)
        try:
            url = validate_url(body.get("url"))
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        events = _events(body.get("events"))
        store = hub_of(request.app).store
        if len(await store.endpoints()) >= MAX_ENDPOINTS:
            raise web.HTTPConflict(text=f"at most {MAX_ENDPOINTS} webhook endpoints; delete one first")
        endpoint = Endpoint(id="wh_" + secrets.token_hex(8), url=url, events=events, secret=new_secret(),
                            created_at=time.time())
        await store.add_endpoint(endpoint)
        # the secret is shown here, once; the node keeps it (0600 / Redis) to sign with
        return web.json_response({**endpoint.public(), "secret": endpoint.secret}, status=201)

    async def list_all(request: web.Request) -> web.Response:
        require_admin(request)
        endpoints = await hub_of(request.app).store.endpoints()
        return web.json_response({"webhooks": [e.public() for e in endpoints]})

    async def _endpoint(request: web.Request) -> Endpoint:
        wanted = request.match_info["id"]
        for endpoint in await hub_of(request.app).store.endpoints():
            if endpoint.id == wanted:
                return endpoint
        raise web.HTTPNotFound(text=f"no webhook {wanted[:40]!r}")

    async def delete(request: web.Request) -> web.Response:
        require_admin(request)
        endpoint = await _endpoint(request)
        await hub_of(request.app).store.remove_endpoint(endpoint.id)
        return web.Response(status=204)

    async def deliveries(request: web.Request) -> web.Response:
        require_admin(request)
        endpoint = await _endpoint(request)
        log = await hub_of(request.app).store.deliveries(endpoint.id)
        return web.json_response({**endpoint.public(), "deliveries": log})

    return create, list_all, delete, deliveries
