"""Any node answers ``/hls/{id}/…`` for any broadcast: requests for another node's broadcast are streamed through.

Where a broadcast's HLS is: the registry names the node that ingests it
(``Broadcast.origin``), the node directory (``broadcaster/nodes.py``) that node's
address while it is alive.  :func:`decide` turns those into one of

* :class:`Local`   — this node ingests it, or nobody else does: served from the data dir;
* :class:`Forward` — another live node ingests it: the request goes there, query and all,
  and its answer (status, caching headers, body) streams back as it comes.  A held LL-HLS
  request (``_HLS_msn``, a preload-hinted part) is held on that node, so it is answered
  when the part exists there: the forward adds one loopback/LAN hop, no polling;
* :class:`Gone`    — the node that ingests it is gone (no heartbeat, or it refuses the
  connection): 404 at once, never a hang.

Streamed through rather than redirected: a redirect would hand viewers (and a cache in front,
which would keep it) a node's internal address, and hls.js resolves every later URI against
the redirected one, so the edge and ``--public-url`` would be bypassed from then on.

A forwarded request carries ``X-Onair-Forwarded``; a node never forwards such a request again
(no loops while the registry changes hands).  Restricted broadcasts are checked by the
ingesting node, which sees the viewer's full query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError
from yarl import URL

from broadcaster import hls_cache
from broadcaster.caps import forwarded_chain
from broadcaster.config import advertised
from broadcaster.http_errors import json_error
from broadcaster.keys import CONFIG, LIVE, METRICS, STORE
from broadcaster.nodes import NodeDirectory, RedisNodes
from broadcaster.registry import Broadcast

log = logging.getLogger("onair.hls_forward")

HOP_HEADER = "X-Onair-Forwarded"
#: request headers a forwarded request keeps (conditional and range requests)
_REQUEST_HEADERS = ("If-None-Match", "If-Modified-Since", "Range", "Accept")
#: response headers streamed back
_RESPONSE_HEADERS = ("Content-Type", "Content-Length", "Cache-Control", "ETag", "Last-Modified", "Content-Range",
                     "Accept-Ranges", "Expires", "Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
                     "Access-Control-Allow-Headers", "Access-Control-Expose-Headers", "Retry-After")
#: how long a route (which node, or gone) is reused before the registry is read again
ROUTE_TTL = 1.0
MAX_ROUTES = 4096
CONNECT_TIMEOUT = 1.0


@dataclass(frozen=True)
class Local:
    """Served from this node's data dir."""


@dataclass(frozen=True)
class Forward:
    node_id: str
    base_url: str


@dataclass(frozen=True)
class Gone:
    node_id: str


Route = Local | Forward | Gone


def decide(broadcast: Broadcast | None, this_node: str, serves_here: bool, address: str | None) -> Route:
    """Where a request for ``broadcast`` is answered (pure; ``address``: its node's advertised URL, if alive)."""
    if serves_here or broadcast is None or not broadcast.origin or broadcast.origin == this_node:
        return Local()
    if address is None:
        return Gone(broadcast.origin)
    return Forward(broadcast.origin, address)


class HlsRouter:
    """Finds where a broadcast's HLS is, keeping each answer for :data:`ROUTE_TTL` seconds."""

    def __init__(self, app: web.Application, nodes: NodeDirectory,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._nodes = nodes
        self._clock = clock
        self._routes: dict[str, tuple[float, Route]] = {}

    async def route(self, broadcast_id: str) -> Route:
        app = self._app
        if app[LIVE].serves(broadcast_id):
            return Local()
        now = self._clock()
        kept = self._routes.get(broadcast_id)
        if kept is not None and kept[0] > now:
            return kept[1]
        broadcast = await app[STORE].get(broadcast_id)
        this_node = app[CONFIG].node_id
        address = None
        if broadcast is not None and broadcast.origin and broadcast.origin != this_node:
            address = await self._nodes.address(broadcast.origin)
        found = decide(broadcast, this_node, False, address)
        if len(self._routes) >= MAX_ROUTES:
            self._routes.clear()
        self._routes[broadcast_id] = (now + ROUTE_TTL, found)
        return found

    def forget(self, broadcast_id: str) -> None:
        self._routes.pop(broadcast_id, None)


HLS_ROUTER = web.AppKey("hls_router", HlsRouter)
HLS_CLIENT = web.AppKey("hls_client", aiohttp.ClientSession)


def _gone(request: web.Request, broadcast_id: str, headers: Mapping[str, str]) -> web.Response:
    return json_error(404, f"broadcast {broadcast_id!r} is not served by any live node",
                      **{**headers, "Cache-Control": hls_cache.not_found(request.app[CONFIG].part_target)})


async def forward_if_elsewhere(request: web.Request, broadcast_id: str, rel: str,
                               headers: Mapping[str, str]) -> web.StreamResponse | None:
    """The answer from the node that ingests ``broadcast_id``, or None if this node answers itself.

    ``broadcast_id`` and ``rel`` have been checked by the origin (safe names, no traversal)."""
    router = request.app.get(HLS_ROUTER)
    if router is None or HOP_HEADER in request.headers:
        return None
    try:
        found = await router.route(broadcast_id)
    except (RedisError, OSError):
        return json_error(503, "the broadcast registry is unavailable; try again",
                          **{**headers, "Cache-Control": "no-cache"})
    if isinstance(found, Local):
        return None
    outcomes = request.app[METRICS].hls_forwarded
    if isinstance(found, Gone):
        outcomes.labels("gone").inc()
        return _gone(request, broadcast_id, headers)
    url = URL(f"{found.base_url}/hls/{broadcast_id}/{rel}", encoded=True)
    if request.rel_url.raw_query_string:
        url = url.with_query(request.rel_url.raw_query_string)
    upstream_headers = {name: request.headers[name] for name in _REQUEST_HEADERS if name in request.headers}
    upstream_headers[HOP_HEADER] = request.app[CONFIG].node_id
    upstream_headers["X-Forwarded-For"] = forwarded_chain(request)  # the viewer, for the other node's caps
    client = request.app[HLS_CLIENT]
    response: web.StreamResponse | None = None
    try:
        async with client.request(request.method, url, headers=upstream_headers, allow_redirects=False) as upstream:
            response = web.StreamResponse(status=upstream.status, headers={
                name: upstream.headers[name] for name in _RESPONSE_HEADERS if name in upstream.headers})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            outcomes.labels("forwarded").inc()
            return response
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        router.forget(broadcast_id)
        if response is not None:
            # the status line is sent: cut the body short, as the other node did
            raise ConnectionResetError(f"the node {found.node_id} stopped answering mid-response") from exc
        log.info("broadcast %s: its node %s at %s does not answer (%s)", broadcast_id, found.node_id,
                 found.base_url, type(exc).__name__)
        outcomes.labels("unreachable").inc()
        return _gone(request, broadcast_id, headers)


def setup_hls_forward(app: web.Application, redis_key: web.AppKey[Redis]) -> None:
    """With Redis: announce this node in the directory, answer for the others' broadcasts.

    Append after the cleanup context that opens Redis and the store (``redis_key`` is its key)."""

    async def forwarding(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        if not config.redis_url:
            yield
            return
        nodes = RedisNodes(app[redis_key], config.node_id, advertised(config), ttl=config.lease_ttl)
        await nodes.announce()
        heartbeat = asyncio.create_task(nodes.run(), name="node-directory")
        # A held request may wait three target durations on the other node; connecting is quick or never
        # (the socket's connect only: waiting for a pooled connection under load is no sign of a dead node).
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT,
                                        sock_read=max(30.0, 3 * config.segment_target + 10))
        client = aiohttp.ClientSession(timeout=timeout, auto_decompress=False,
                                       connector=aiohttp.TCPConnector(limit=1024, limit_per_host=512))
        app[HLS_CLIENT] = client
        app[HLS_ROUTER] = HlsRouter(app, nodes)
        yield
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        with contextlib.suppress(RedisError, OSError):
            await nodes.withdraw()
        await client.close()

    app.cleanup_ctx.append(forwarding)


__all__ = ["HOP_HEADER", "Forward", "Gone", "HlsRouter", "Local", "decide", "forward_if_elsewhere",
           "setup_hls_forward"]
