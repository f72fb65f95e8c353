"""A broadcast's poster: uploaded by its host, checked, re-encoded to JPEG with PyAV, served to viewers.

``PUT /api/broadcasts/{id}/poster`` (admin or the broadcast's host token)
takes the image as the raw body, at most ``MAX_POSTER`` bytes (413 beyond).
PyAV decodes it in a worker thread (never on the event loop): only still-image
formats are accepted (PNG, JPEG, WebP, GIF, BMP; anything else is a 400 that
says so), at most ``MAX_PIXELS`` pixels, and the first picture is scaled to fit
1280×720 and written as a new JPEG, so nothing of the upload (metadata, a
polyglot's other half) is ever served.  Nothing is stored unless all of that
succeeded.  ``GET /posters/{id}.jpg`` serves it to whoever may view the
broadcast (a restricted one needs the viewer's grant, as its API does).
The JPEG lives in ``<data_dir>/posters/`` (one node) or in Redis (a cluster).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
from aiohttp import web
from redis.asyncio import Redis

from broadcaster import datadir
from broadcaster.api import bearer, is_admin, load_broadcast, refuse_caller, viewable
from broadcaster.http_errors import body_error
from broadcaster.keys import CONFIG, STORE
from broadcaster.registry import Visibility, host_token_matches
from ingest.http_body import BodyError, read_body

MAX_POSTER = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIZE = (1280, 720)
IMAGE_FORMATS = {"png_pipe", "jpeg_pipe", "webp_pipe", "gif", "bmp_pipe", "gif_pipe"}


class PosterError(ValueError):
    """The upload is not a usable image; the message says why."""


def reencode(data: bytes) -> bytes:
    """The first picture of ``data`` as a JPEG of at most 1280×720 (blocking: call it in a thread)."""
    if not data:
        raise PosterError("the poster is empty: send the image as the request body")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            names = set(container.format.name.split(","))
            if not names & IMAGE_FORMATS or not container.streams.video:
                raise PosterError("the poster is not an image (PNG, JPEG, WebP, GIF or BMP)")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > MAX_PIXELS:
                raise PosterError(f"the poster is {width}×{height}: at most {MAX_PIXELS // 1_000_000} megapixels")
            frame = next(container.decode(stream), None)
    except PosterError:
        raise
    except (av.FFmpegError, StopIteration, ValueError, OSError) as exc:
        raise PosterError(f"the poster is not an image that can be decoded ({type(exc).__name__})") from None
    if frame is None or not frame.width or not frame.height:
        raise PosterError("the poster holds no picture")
    scale = min(1.0, MAX_SIZE[0] / frame.width, MAX_SIZE[1] / frame.height)
    out_w, out_h = max(2, round(frame.width * scale) // 2 * 2), max(2, round(frame.height * scale) // 2 * 2)
    picture = frame.reformat(width=out_w, height=out_h, format="yuvj420p")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = out_w, out_h, "yuvj420p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"qmin": "2", "qmax": "6"}
    picture.pts = 0
    packets = [*codec.encode(picture), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)


class PosterStore(Protocol):
    async def put(self, broadcast_id: str, jpeg: bytes) -> None: ...
    async def get(self, broadcast_id: str) -> bytes | None: ...


class FilePosters:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def put(self, broadcast_id: str, jpeg: bytes) -> None:
        def write() -> None:
            self._folder.mkdir(mode=0o700, exist_ok=True)
            datadir.write_private(self._folder / f"{broadcast_id}.jpg", jpeg)
        await asyncio.to_thread(write)

    async def get(self, broadcast_id: str) -> bytes | None:
        path = self._folder / f"{broadcast_id}.jpg"
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None


class RedisPosters:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def put(self, broadcast_id: str, jpeg: bytes) -> None:
        await self._redis.set(f"onair:posters:{broadcast_id}", jpeg)

    async def get(self, broadcast_id: str) -> bytes | None:
        raw = await self._redis.get(f"onair:posters:{broadcast_id}")
        return raw if isinstance(raw, bytes) else None


def _posters(app: web.Application) -> PosterStore:
    config = app[CONFIG]
    if config.redis_url:
        from broadcaster.keys import REDIS

        return RedisPosters(app[REDIS])
    return FilePosters(config.data_dir / "posters")


async def upload(request: web.Request) -> web.Response:
    broadcast = await load_broadcast(request)
    token = bearer(request)
    if token is None or not (is_admin(request) or host_token_matches(broadcast, token)):
        raise refuse_caller(broadcast, "admin or host token required")
    try:
        data = await read_body(request, MAX_POSTER, what="poster")
    except BodyError as exc:
        raise body_error(exc) from None
    try:
        jpeg = await asyncio.to_thread(reencode, data)
    except PosterError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    await _posters(request.app).put(broadcast.id, jpeg)
    current = await request.app[STORE].get(broadcast.id) or broadcast
    await request.app[STORE].put(replace(current, poster=hashlib.sha256(jpeg).hexdigest()[:12]))
    from broadcaster.api import describe

    updated = await request.app[STORE].get(broadcast.id)
    assert updated is not None
    return web.json_response(describe(request, updated, secrets=False))


async def serve(request: web.Request) -> web.Response:
    broadcast = await viewable(request)
    jpeg = await _posters(request.app).get(broadcast.id) if broadcast.poster else None
    if jpeg is None:
        raise web.HTTPNotFound(text=f"broadcast {broadcast.id!r} has no poster")
    cache = "private, no-store" if broadcast.visibility is Visibility.RESTRICTED else "public, max-age=300"
    return web.Response(body=jpeg, content_type="image/jpeg",
                        headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})


def add_routes(app: web.Application) -> None:
    app.router.add_put("/api/broadcasts/{id}/poster", upload)
    app.router.add_get("/posters/{id}.jpg", serve)
