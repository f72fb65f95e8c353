"""The recordings API.

    GET    /api/broadcasts/{id}/recording        status, duration, size and the URLs below
    PATCH  /api/broadcasts/{id}/recording        admin: {"retention_days": N | null}
    DELETE /api/broadcasts/{id}/recording        admin: media, MP4, poster, chat, reactions, archive
    GET    /api/broadcasts/{id}/recording/chat   the chat replay, [{t, type, ...}] (JSON)
    GET    /recordings/{id}/recording.mp4        the MP4 (range requests: 206), or a redirect to storage
    GET    /recordings/{id}/poster.jpg           the poster

Who may read: anyone for a public broadcast; for a restricted one the admin, its host, or a viewer
with a playback grant (``Authorization: Bearer <grant>`` or ``?grant=``), which the URLs handed back
carry.  Any other caller is told the broadcast does not exist, in the words an unknown id gets.
"""

from __future__ import annotations

import math

from aiohttp import web

from broadcaster.api import bearer, grant_admits, is_admin, require_admin
from broadcaster.http_errors import read_json_object
from broadcaster.keys import CONFIG, STORE
from broadcaster.playback.grants import GRANT_PARAM
from broadcaster.recordings.meta import MP4, POSTER, RecordingMeta, RecordingStatus
from broadcaster.recordings.service import RecordingService
from broadcaster.registry import Broadcast, Visibility, host_token_matches

RECORDINGS = web.AppKey("recordings", RecordingService)

#: the longest per-broadcast retention accepted (days): about a hundred years
MAX_RETENTION_DAYS = 36_500
_FILES = {MP4: "video/mp4", POSTER: "image/jpeg"}
CORS = {"Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges"}


async def _admitted(request: web.Request) -> tuple[Broadcast, str | None]:
    """The broadcast, if this caller may have its recording, and the grant its URLs must carry."""
    broadcast_id = request.match_info["id"]
    broadcast = await request.app[STORE].get(broadcast_id)
    token = bearer(request)
    if broadcast is not None and token is not None and \
            (is_admin(request) or host_token_matches(broadcast, token)):
        return broadcast, None
    if broadcast is not None and broadcast.visibility is Visibility.PUBLIC:
        return broadcast, None
    grant = request.query.get(GRANT_PARAM) or token or ""
    if broadcast is not None and await grant_admits(request, broadcast, grant):
        return broadcast, grant
    raise web.HTTPNotFound(text=f"no broadcast {broadcast_id!r}")


def _base(request: web.Request) -> str:
    host = request.app[CONFIG].public_host or request.host
    return f"{request.scheme}://{host}"


def describe(request: web.Request, broadcast: Broadcast, recording: RecordingMeta | None,
             grant: str | None) -> dict[str, object]:
    service = request.app[RECORDINGS]
    base = _base(request)
    suffix = f"?{GRANT_PARAM}={grant}" if grant else ""
    status = recording.status if recording is not None else RecordingStatus.RECORDING
    doc: dict[str, object] = {"broadcast_id": broadcast.id, "status": status.value,
                              "duration": recording.duration if recording else None,
                              "size": recording.size if recording else None}
    if status is not RecordingStatus.DELETED:
        doc["hls_url"] = f"{base}/hls/{broadcast.id}/master.m3u8{suffix}"
        doc["chat_url"] = f"{base}/api/broadcasts/{broadcast.id}/recording/chat{suffix}"
    if status is RecordingStatus.READY:
        doc["mp4_url"] = f"{base}/recordings/{broadcast.id}/{MP4}{suffix}"
        doc["poster_url"] = f"{base}/recordings/{broadcast.id}/{POSTER}{suffix}"
    if recording is not None:
        expires = service.expires_at(recording) if status is RecordingStatus.READY else None
        doc.update({"retention_days": recording.retention_days, "expires_at": expires,
                    "ended_at": recording.ended_at, "made_at": recording.made_at})
        if recording.error:
            doc["error"] = recording.error
        if status is RecordingStatus.DELETED:
            doc.update({"deleted_at": recording.deleted_at, "deleted_by": recording.deleted_by})
        if recording.upload is not None:
            doc["storage"] = {"state": recording.upload, "attempts": recording.upload_attempts,
                              "error": recording.upload_error, "local_copy": not recording.local_removed}
    return doc


async def read(request: web.Request) -> web.Response:
    broadcast, grant = await _admitted(request)
    recording = request.app[RECORDINGS].state(broadcast.id)
    return web.json_response(describe(request, broadcast, recording, grant), headers=CORS)


async def update(request: web.Request) -> web.Response:
    require_admin(request)
    broadcast, _ = await _admitted(request)
    body = await read_json_object(request)
    if set(body) != {"retention_days"}:
        raise web.HTTPBadRequest(text="the body must be {\"retention_days\": <days> or null}")
    days = body["retention_days"]
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float))
                             or not math.isfinite(days) or not 0 <= days <= MAX_RETENTION_DAYS):
        raise web.HTTPBadRequest(text=f"'retention_days' must be a number of days from 0 to {MAX_RETENTION_DAYS}, "
                                      "or null for the node's default")
    service = request.app[RECORDINGS]
    await service.set_retention(broadcast.id, float(days) if days is not None else None)
    return web.json_response(describe(request, broadcast, service.state(broadcast.id), None))


async def delete(request: web.Request) -> web.Response:
    require_admin(request)
    broadcast, _ = await _admitted(request)
    if broadcast.status.value in ("live", "reconnecting"):
        raise web.HTTPConflict(text=f"broadcast {broadcast.id} is {broadcast.status.value}; end it first")
    service = request.app[RECORDINGS]
    try:
        gone = await service.delete(broadcast.id, "admin")
    except Exception as exc:  # noqa: BLE001 - the object storage's (botocore's) errors, whatever their type
        if service.uploader is None:
            raise
        raise web.HTTPBadGateway(text=f"the object storage refused the deletion ({type(exc).__name__}); "
                                      "nothing was deleted, try again") from None
    return web.json_response(describe(request, broadcast, gone, None))


async def chat(request: web.Request) -> web.Response:
    broadcast, _ = await _admitted(request)
    service = request.app[RECORDINGS]
    recording = service.meta(broadcast.id)
    if recording is not None and recording.status is RecordingStatus.DELETED:
        raise web.HTTPGone(text=f"the recording of {broadcast.id} was deleted")
    cache = "public, max-age=5" if broadcast.visibility is Visibility.PUBLIC else "private, no-store"
    return web.json_response(await service.chat(broadcast.id), headers={**CORS, "Cache-Control": cache})


async def recording_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _FILES:
        raise web.HTTPNotFound(text="not found")
    broadcast, _ = await _admitted(request)
    service = request.app[RECORDINGS]
    recording = service.meta(broadcast.id)
    if recording is None or recording.status is not RecordingStatus.READY:
        raise web.HTTPNotFound(text=f"the recording of {broadcast.id} is not ready")
    path = service.directory(broadcast.id) / name
    if not path.is_file() and service.uploader is not None and recording.upload == "uploaded":
        served: web.StreamResponse = await service.uploader.serve(request, broadcast.id, name, _FILES[name])
        return served
    if not path.is_file():
        raise web.HTTPNotFound(text="not found")
    cache = "public, max-age=3600" if broadcast.visibility is Visibility.PUBLIC else "private, max-age=3600"
    return web.FileResponse(path, headers={**CORS, "Content-Type": _FILES[name], "Cache-Control": cache})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/broadcasts/{id}/recording", read)
    app.router.add_patch("/api/broadcasts/{id}/recording", update)
    app.router.add_delete("/api/broadcasts/{id}/recording", delete)
    app.router.add_get("/api/broadcasts/{id}/recording/chat", chat)
    app.router.add_get("/recordings/{id}/{name}", recording_file)


__all__ = ["RECORDINGS", "add_routes", "describe"]
