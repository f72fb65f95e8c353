"""JSON errors for every HTTP answer: ``{"error": "..."}`` with the right status, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from broadcaster import json_input
from ingest.http_body import BodyError, read_body

log = logging.getLogger("onair.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate", "retry-after")}
        return json_error(exc.status, message, **headers)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal server error")


def body_error(exc: BodyError) -> web.HTTPException:
    """The aiohttp answer for a body that could not be read (413 too large, 408 too slow)."""
    if exc.status == 413:
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text=exc.reason)
    return web.HTTPRequestTimeout(text=exc.reason)


async def read_json_object(request: web.Request, max_bytes: int = 64 * 1024) -> dict[str, Any]:
    """The whole request body as a JSON object (strict: see :mod:`broadcaster.json_input`),
    or a 400/408/413 with a clear message."""
    try:
        raw = await read_body(request, max_bytes)
    except BodyError as exc:
        raise body_error(exc) from None
    if not raw:
        return {}
    try:
        body = json_input.loads(raw)
    except json_input.JsonInputError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the request body must be a JSON object")
    return body
