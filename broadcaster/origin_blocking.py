"""Held LL-HLS requests on the origin: blocking playlist reloads and preload-hinted parts.

A held request is nothing but its handler coroutine awaiting
:meth:`PlaylistWatch.changed`: no thread, no polling, and every other request
goes on being served.  What to do is decided by ``ingest/hls/blocking.py``,
asked again after every publish of the playlist (and when the wait times out).
The pipeline publishes right after it has written the playlist, so a request
woken by a publish is answered at once with the file as it is on disk.

Before a request first waits it takes a ``hls_held`` slot (``broadcaster/caps.py``):
past the per-node or per-address cap it is answered 503 with ``Retry-After`` instead
of being held.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from aiohttp import web

from broadcaster import hls_cache
from broadcaster.caps import CAPS, RETRY_AFTER
from broadcaster.http_errors import json_error
from broadcaster.keys import PLAYLIST_WATCH
from ingest.hls.blocking import Reject, Wait, decide_part, decide_reload

RELOAD_DIRECTIVES = ("_HLS_msn", "_HLS_part")
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


def wants_blocking_reload(request: web.Request) -> bool:
    return any(name in request.query for name in RELOAD_DIRECTIVES)


def refuse(decision: Reject, headers: Mapping[str, str]) -> web.Response:
    """A JSON error that keeps the CORS headers, so a player in a page can read its status."""
    extra = {"Retry-After": str(RETRY_AFTER)} if decision.status == 503 else {}
    return json_error(decision.status, decision.reason, **{**headers, "Cache-Control": "no-cache", **extra})


class _Hold:
    """The request's ``hls_held`` slot, taken before its first wait and given back when it ends."""

    def __init__(self, request: web.Request) -> None:
        self._slots = request.app[CAPS].hls_held
        self._address = request.remote or ""
        self.taken = False

    def take(self) -> Reject | None:
        if self.taken:
            return None
        reason = self._slots.enter(self._address)
        if reason is not None:
            return Reject(503, self._slots.explain(reason))
        self.taken = True
        return None


@contextlib.asynccontextmanager
async def _holding(request: web.Request) -> AsyncIterator[_Hold]:
    hold = _Hold(request)
    try:
        yield hold
    finally:
        if hold.taken:
            hold._slots.leave(hold._address)


async def blocking_reload(request: web.Request, playlist: Path, broadcast_id: str, rendition: str,
                          headers: Mapping[str, str],
                          present: Callable[[bytes], web.Response] | None = None) -> web.Response:
    """Answer ``<rendition>/index.m3u8?_HLS_msn=..[&_HLS_part=..]`` once the playlist has got there
    (with ``present(body)``'s response if given: a restricted broadcast's playlist, rewritten)."""
    watch = request.app[PLAYLIST_WATCH]
    msn, part = request.query.get("_HLS_msn"), request.query.get("_HLS_part")
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with _holding(request) as hold:
        while True:
            position = watch.position(broadcast_id, rendition)
            decision = decide_reload(position, msn, part, loop.time() - started)
            if not isinstance(decision, Wait):
                break
            if (refused := hold.take()) is not None:
                decision = refused
                break
            # No await between the decision and this call: a publish cannot slip in unseen.
            await watch.changed(broadcast_id, rendition, decision.remaining)
    if isinstance(decision, Reject):
        return refuse(decision, headers)
    try:
        # A playlist is a few KiB, just written, in the page cache: reading it here costs
        # less than a hop to a thread, and reading it whole means the bytes sent are the
        # ones the decision was made for (the pipeline replaces the file by renaming).
        body = playlist.read_bytes()
    except OSError:
        return refuse(Reject(404, "not found"), headers)
    if present is not None:
        return present(body)
    # An ended playlist never changes again; a live one stays a right answer to this very query.
    if b"#EXT-X-ENDLIST" in body or position is None:
        cache = hls_cache.ENDED_PLAYLIST if b"#EXT-X-ENDLIST" in body else hls_cache.LIVE_PLAYLIST
    else:
        cache = hls_cache.blocking_reload(position.target_duration)
    return web.Response(body=body, headers={**headers, "Content-Type": PLAYLIST_TYPE, "Cache-Control": cache})


async def await_part(request: web.Request, part: Path, broadcast_id: str, rendition: str) -> Reject | None:
    """Wait for the missing file ``part`` if the playlist hints it (None: it is there now).

    Any other missing file, or a hinted one not written within three target
    durations, is refused with a 404.
    """
    watch = request.app[PLAYLIST_WATCH]
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with _holding(request) as hold:
        while not part.is_file():
            decision = decide_part(watch.position(broadcast_id, rendition), part.name, loop.time() - started)
            if isinstance(decision, Reject):
                return decision
            if (refused := hold.take()) is not None:
                return refused
            await watch.changed(broadcast_id, rendition, decision.remaining)
    return None
