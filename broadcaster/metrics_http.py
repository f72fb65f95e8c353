"""``/metrics`` over HTTP: what a scrape may see, and the optional metrics-only listener.

On the node's public port, ``GET /metrics`` leaves out every per-broadcast series (they name broadcast
ids, restricted ones included) unless the request carries the admin token.  ``--metrics-listen``
serves the whole set on an address of its own, loopback unless told otherwise: the Prometheus
convention of a scrape port that only the monitoring network reaches.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from broadcaster.api import is_admin
from broadcaster.config import parse_listen
from broadcaster.keys import CONFIG, METRICS

log = logging.getLogger("onair.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render(per_broadcast=is_admin(request))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def metrics_listener(node: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` of the metrics-only listener (nothing without ``--metrics-listen``): every series."""
    listen = node[CONFIG].metrics_listen
    if not listen:
        yield
        return

    async def serve_all(request: web.Request) -> web.Response:
        return web.Response(body=node[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})

    host, port = parse_listen(listen)
    scrape = web.Application()
    scrape.router.add_get("/metrics", serve_all)
    runner = web.AppRunner(scrape, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("metrics (every series) on http://%s:%d/metrics", host, port)
    yield
    await runner.cleanup()
