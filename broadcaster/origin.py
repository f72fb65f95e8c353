"""The HLS origin: playlists and segments from ``<data_dir>/hls``.

Paths from URLs are resolved under the broadcast's directory and refused if
they would leave it.  How long a cache may keep each answer is decided in
``broadcaster/hls_cache.py`` (per LL-HLS: objects immutable, live playlists a
second, blocking reloads by their full query).

Any node answers for any broadcast: a request for a broadcast ingested by
another node is streamed through from that node (``broadcaster/hls_forward.py``).

LL-HLS: a media playlist request with ``_HLS_msn``/``_HLS_part`` and a request
for a part the playlist hints but that is not written yet are held until the
packager gets there (``broadcaster/origin_blocking.py``).

Only a broadcast the registry knows as public is served to anyone.  Any other id
(restricted, or unknown: answered alike) goes through the playback gate
(``broadcaster/playback/``): playlists need the viewer's grant and come back
rewritten, objects need the signature the rewritten playlists carry (or a grant);
refusals are JSON 401/403 with the CORS headers kept.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from aiohttp import web

from broadcaster import hls_cache
from broadcaster.hls_forward import forward_if_elsewhere
from broadcaster.keys import CONFIG
from broadcaster.origin_blocking import await_part, blocking_reload, refuse, wants_blocking_reload
from broadcaster.playback.access import Unavailable
from broadcaster.playback.gate import PLAYBACK, PlaybackGate
from broadcaster.playback.grants import GRANT_PARAM, AccessState, Refused
from ingest.hls.blocking import Reject

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".aac": "audio/aac",
    ".vtt": "text/vtt",
}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SAFE_PART = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MEDIA_PLAYLIST = "index.m3u8"

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, Origin, Accept",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Age, Date",
}


def resolve(root: Path, broadcast_id: str, rel: str) -> Path | None:
    """The file a URL names, or None if the name is malformed or escapes ``root``."""
    if not _SAFE_ID.match(broadcast_id):
        return None
    parts = rel.split("/")
    if not parts or any(not _SAFE_PART.match(p) or p in (".", "..") for p in parts):
        return None
    base = (root / broadcast_id).resolve()
    target = (base / Path(*parts)).resolve()
    if base not in target.parents:
        return None
    return target


def _is_vod(playlist: Path) -> bool:
    try:
        with playlist.open("rb") as fh:
            fh.seek(max(0, playlist.stat().st_size - 64))
            return b"#EXT-X-ENDLIST" in fh.read()
    except OSError:
        return False


async def serve(request: web.Request) -> web.StreamResponse:
    root = request.app[CONFIG].hls_dir
    broadcast_id, rel = request.match_info["id"], request.match_info["path"]
    target = resolve(root, broadcast_id, rel)
    if target is None:
        raise web.HTTPNotFound(text="not found", headers=CORS)
    content_type = CONTENT_TYPES.get(target.suffix)
    if content_type is None:
        raise web.HTTPNotFound(text="not found", headers=CORS)
    forwarded = await forward_if_elsewhere(request, broadcast_id, rel, CORS)
    if forwarded is not None:
        return forwarded
    gate = request.app[PLAYBACK]
    try:
        state = await gate.state(broadcast_id)
    except Unavailable:
        return refuse(Reject(503, "playback authorisation is unavailable; try again"), CORS)
    if state.gated:
        return await serve_gated(request, gate, state, target, broadcast_id, rel, content_type)
    # LL-HLS requests that may be held name a file of a rendition: <rendition>/<name>
    rendition, _, name = rel.partition("/")
    in_rendition = bool(name) and "/" not in name
    if in_rendition and name == MEDIA_PLAYLIST and wants_blocking_reload(request):
        return await blocking_reload(request, target, broadcast_id, rendition, CORS)
    if in_rendition and target.suffix == ".m4s" and not target.is_file():
        refusal = await await_part(request, target, broadcast_id, rendition)
        if refusal is not None:
            return refuse(refusal, CORS)
    if not target.is_file():
        raise web.HTTPNotFound(text="not found", headers={
            **CORS, "Cache-Control": hls_cache.not_found(request.app[CONFIG].part_target)})
    if target.suffix == ".m3u8":
        cache = hls_cache.ENDED_PLAYLIST if _is_vod(target) else hls_cache.LIVE_PLAYLIST
    else:
        cache = hls_cache.OBJECT
    response = web.FileResponse(target, headers={**CORS, "Content-Type": content_type, "Cache-Control": cache})
    return response


async def serve_gated(request: web.Request, gate: PlaybackGate, state: AccessState, target: Path,
                      broadcast_id: str, rel: str, content_type: str) -> web.StreamResponse:
    """A restricted broadcast's (or an unknown id's) file, to a request that shows it may have it."""
    now = time.time()
    playlist = target.suffix == ".m3u8"
    try:
        if playlist:
            gate.check_playlist(state, broadcast_id, request.query, now)
        else:
            gate.check_object(state, broadcast_id, rel, request.query, now)
    except Refused as exc:
        return refuse(Reject(exc.status, exc.reason), CORS)
    rendition, _, name = rel.partition("/")
    in_rendition = bool(name) and "/" not in name
    if playlist:
        def present(body: bytes) -> web.Response:
            granted = gate.playlist(state, broadcast_id, rel, body, request.query[GRANT_PARAM], now)
            # Per viewer and checked per request: never kept by a shared cache.
            return web.Response(body=granted, headers={**CORS, "Content-Type": content_type,
                                                       "Cache-Control": hls_cache.PRIVATE})

        if in_rendition and name == MEDIA_PLAYLIST and wants_blocking_reload(request):
            return await blocking_reload(request, target, broadcast_id, rendition, CORS, present=present)
        try:
            return present(target.read_bytes())
        except OSError:
            return refuse(Reject(404, "not found"), CORS)
    if in_rendition and target.suffix == ".m4s" and not target.is_file():
        refusal = await await_part(request, target, broadcast_id, rendition)
        if refusal is not None:
            return refuse(refusal, CORS)
    if not target.is_file():
        return refuse(Reject(404, "not found"), CORS)
    return web.FileResponse(target, headers={**CORS, "Content-Type": content_type,
                                             "Cache-Control": gate.object_cache_control(request.query, now)})


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={**CORS, "Access-Control-Max-Age": "86400"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/hls/{id}/{path:.+}", serve)
    app.router.add_route("OPTIONS", "/hls/{id}/{path:.+}", preflight)
