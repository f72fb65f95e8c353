"""``POST /api/broadcasts/{id}/viewer-tokens``: signed viewer identities.

Authorised by the admin token or the broadcast's host token.  Body
``{"name": str, "viewer_id"?: str, "ttl"?: seconds}`` → ``{"token", "viewer_id", "expires"}``;
for a restricted broadcast also the viewer's playback ``grant`` (same viewer, epoch and expiry),
``hls_url`` (the master playlist with the grant: any HLS player) and ``watch_url`` (the watch page
with token and grant in its fragment, which never reaches a server log).
A reserved name ("host", a moderator's name: ``names.py``) is refused: those
are for the identities the console hands out, which carry a verified role.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from broadcaster.api import base_urls, require_host
from broadcaster.chat import protocol as proto
from broadcaster.chat.names import ReservedNames
from broadcaster.chat.tokens import DEFAULT_TTL, ViewerIdentity, issue, new_viewer_id
from broadcaster.http_errors import read_json_object
from broadcaster.playback.gate import PLAYBACK
from broadcaster.playback.grants import GRANT_PARAM
from broadcaster.registry import Visibility

log = logging.getLogger("onair.chat.api")

_VIEWER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_TTL = 30 * 24 * 3600.0


def viewer_token_handler(secret: Callable[[], bytes],
                         names: ReservedNames) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler; ``secret()`` gives the cluster secret once the relay has started."""
    async def create_viewer_token(request: web.Request) -> web.Response:
        broadcast = await require_host(request)
        body = await read_json_object(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise web.HTTPBadRequest(text="'name' is required and must be a non-empty string")
        name = " ".join(name.split())
        if len(name) > proto.MAX_NAME:
            raise web.HTTPBadRequest(text=f"'name' is longer than {proto.MAX_NAME} characters")
        if await names.is_reserved(broadcast.id, name):
            raise web.HTTPBadRequest(text=f"'name' {name!r} is reserved (the host's or a moderator's)")
        viewer_id = body.get("viewer_id")
        if viewer_id is None:
            viewer_id = new_viewer_id()
        elif not isinstance(viewer_id, str) or not _VIEWER_ID.match(viewer_id):
            raise web.HTTPBadRequest(text="'viewer_id' must be 1-64 characters of A-Z a-z 0-9 _ . : -")
        ttl = body.get("ttl", DEFAULT_TTL)
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl <= MAX_TTL:
            raise web.HTTPBadRequest(text=f"'ttl' must be a number of seconds in (0, {int(MAX_TTL)}]")
        now = time.time()
        gate = request.app[PLAYBACK]
        restricted = broadcast.visibility is Visibility.RESTRICTED
        epoch = await gate.current_epoch(broadcast.id) if restricted else 0
        signed = issue(secret(), broadcast.id, viewer_id, name, ttl=float(ttl), now=now, epoch=epoch)
        answer: dict[str, object] = {"token": signed, "viewer_id": viewer_id, "expires": int(now + ttl)}
        if restricted:
            grant = gate.issue_grant(ViewerIdentity(broadcast.id, viewer_id, name, int(now + ttl), epoch))
            http_base, _ = base_urls(request)
            answer["grant"] = grant
            answer["hls_url"] = f"{http_base}/hls/{broadcast.id}/master.m3u8?{GRANT_PARAM}={grant}"
            answer["watch_url"] = f"{http_base}/watch/{broadcast.id}#token={signed}&{GRANT_PARAM}={grant}"
        log.info("viewer token issued for %s (viewer %s)", broadcast.id, viewer_id)
        return web.json_response(answer, status=201)
    return create_viewer_token

