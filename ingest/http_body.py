"""Reading an HTTP request body whole, up to a bound: the one place every endpoint reads a body.

``await request.content.read(n)`` returns what has *arrived so far* (at most
``n`` bytes), not ``n`` bytes: a JSON body or an SDP offer split over two TCP
segments would be cut short and misread as invalid.  :func:`read_body` reads
until the end of the body, refuses a body over ``limit`` (by its
Content-Length before reading, or as soon as more than ``limit`` bytes
arrived) and gives up on a body that does not finish arriving in ``timeout``
seconds.  Errors carry the HTTP status and an exact reason; each edge turns
them into its own error answer (the API's JSON errors, WHIP's CORS answers).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

#: seconds a client has to deliver a whole request body once the handler asks for it
BODY_TIMEOUT = 30.0


class BodyError(Exception):
    """The request body cannot be read: ``status`` (408 or 413) and ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: web.BaseRequest, limit: int, *, what: str = "request body",
                    timeout: float = BODY_TIMEOUT) -> bytes:
    """The whole body of ``request`` (``b""`` if it has none), at most ``limit`` bytes."""
    too_large = BodyError(413, f"{what} larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                chunk = await request.content.read(limit + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise too_large
    except TimeoutError:
        raise BodyError(408, f"{what} not received within {timeout:g} s") from None
    return b"".join(chunks)


__all__ = ["BODY_TIMEOUT", "BodyError", "read_body"]
