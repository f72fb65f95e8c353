"""Recordings in S3-compatible object storage (``--recording-store s3://bucket/prefix``), off by default.

The client is aiobotocore: botocore's request signing, retries, presigning and API models on the
aiohttp the node already runs on, so uploads are plain coroutines on the event loop (file reads in a
worker thread) and no second HTTP stack or native extension comes in.  (obstore was the other
candidate: fast, but a Rust extension with its own HTTP client and no say over its connection pool.)

:class:`ObjectStore` is the bucket: upload (one PUT, or a multipart upload past ``part_size``), check
what was stored by size and ETag (an MD5 for a single PUT, the MD5 of the parts' MD5s and ``-<parts>``
for a multipart one), presign, delete.  :class:`Uploader` moves a ready recording there, one step per
scan of the recording service: ``pending``/``failed`` → upload (retried with a growing back-off, each
failure reported in the recording's ``storage`` status) → ``uploaded``; the local copy is removed
``local_grace`` seconds later, after which the files are served by a redirect to a presigned URL
(the storage answers range requests itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from broadcaster.recordings import meta as meta_file
from broadcaster.recordings.meta import MP4, POSTER, RecordingMeta

if TYPE_CHECKING:
    from broadcaster.recordings.service import RecordingService

log = logging.getLogger("onair.recordings.storage")

#: S3's smallest part (but the last) is 5 MiB
MIN_PART = 5 << 20
#: presigned URLs handed to viewers last this long (a player fetches the MP4 by ranges meanwhile)
PRESIGN_SECONDS = 600
#: back-off between upload attempts: 2, 4, 8 ... seconds, at most this
MAX_BACKOFF = 300.0


class StorageError(Exception):
    """Object storage refused or lost something (the message says what)."""


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    etag: str
    parts: int


class ObjectStore:
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 part_size: int = 8 << 20) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes (S3's smallest part)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.part_size = part_size
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    @classmethod
    def from_url(cls, url: str, endpoint_url: str = "", **options: Any) -> "ObjectStore":
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"{url!r} is not s3://bucket/prefix")
        return cls(parts.netloc, parts.path, endpoint_url or None, **options)

    def key(self, broadcast_id: str, name: str) -> str:
        return "/".join(p for p in (self.prefix, broadcast_id, name) if p)

    async def client(self) -> Any:
        if self._client is None:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session

            self._stack = contextlib.AsyncExitStack()
            config = AioConfig(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
            self._client = await self._stack.enter_async_context(
                get_session().create_client("s3", endpoint_url=self.endpoint_url, config=config))
        return self._client

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()

    async def upload(self, path: Path, key: str) -> Stored:
        """Upload ``path`` to ``key`` and check what the storage holds against it."""
        size = path.stat().st_size
        if size <= self.part_size:
            data = await asyncio.to_thread(path.read_bytes)
            client = await self.client()
            await client.put_object(Bucket=self.bucket, Key=key, Body=data)
            expected, parts = hashlib.md5(data).hexdigest(), 1
        else:
            expected, parts = await self._multipart(path, key)
        return await self.verify(key, size, expected, parts)

    async def _multipart(self, path: Path, key: str) -> tuple[str, int]:
        client = await self.client()
        upload_id = (await client.create_multipart_upload(Bucket=self.bucket, Key=key))["UploadId"]
        digests: list[bytes] = []
        done: list[dict[str, Any]] = []
        try:
            with path.open("rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, self.part_size):
                    number = len(done) + 1
                    answer = await client.upload_part(Bucket=self.bucket, Key=key, PartNumber=number,
                                                      UploadId=upload_id, Body=chunk)
                    digests.append(hashlib.md5(chunk).digest())
                    done.append({"PartNumber": number, "ETag": answer["ETag"]})
            await client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                   MultipartUpload={"Parts": done})
        except BaseException:
            with contextlib.suppress(Exception):
                await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(done)}", len(done)

    async def verify(self, key: str, size: int, etag: str, parts: int) -> Stored:
        client = await self.client()
        head = await client.head_object(Bucket=self.bucket, Key=key)
        stored_etag = str(head["ETag"]).strip('"')
        if int(head["ContentLength"]) != size:
            raise StorageError(f"{key}: the storage holds {head['ContentLength']} bytes, {size} were sent")
        if stored_etag != etag:
            raise StorageError(f"{key}: the storage's ETag {stored_etag} is not the {etag} of what was sent")
        return Stored(key, size, stored_etag, parts)

    async def presign(self, key: str, seconds: int = PRESIGN_SECONDS) -> str:
        client = await self.client()
        return str(await client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                       ExpiresIn=seconds))

    async def delete(self, key: str) -> None:
        client = await self.client()
        await client.delete_object(Bucket=self.bucket, Key=key)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class Uploader:
    """The recording service's link to object storage (one step per scan; see the module docstring)."""

    FILES = (MP4, POSTER)

    def __init__(self, store: ObjectStore, *, local_grace: float = 3600.0) -> None:
        self.store = store
        self.local_grace = local_grace

    async def close(self) -> None:
        await self.store.close()

    async def step(self, service: "RecordingService", broadcast_id: str, recording: RecordingMeta) -> None:
        now = time.time()
        directory = service.directory(broadcast_id)
        if recording.upload in ("pending", "failed", "uploading"):
            if now < float(recording.extra.get("next_attempt", 0)):
                return
            await self._upload(service, broadcast_id, recording)
        elif recording.upload == "uploaded" and not recording.local_removed and \
                recording.local_until is not None and now >= recording.local_until:
            for name in self.FILES:
                (directory / name).unlink(missing_ok=True)
            meta_file.save(directory, recording.with_(local_removed=True))
            log.info("recording %s: local copy removed (kept in the object storage)", broadcast_id)

    async def _upload(self, service: "RecordingService", broadcast_id: str, recording: RecordingMeta) -> None:
        directory = service.directory(broadcast_id)
        attempt = recording.upload_attempts + 1
        meta_file.save(directory, recording.with_(upload="uploading", upload_attempts=attempt))
        try:
            stored = [await self.store.upload(directory / name, self.store.key(broadcast_id, name))
                      for name in self.FILES]
        except Exception as exc:  # noqa: BLE001 - reported, retried
            delay = min(MAX_BACKOFF, 2.0 ** attempt)
            failed = recording.with_(upload="failed", upload_attempts=attempt, upload_error=_error(exc),
                                     extra={**recording.extra, "next_attempt": time.time() + delay})
            meta_file.save(directory, failed)
            log.warning("recording %s: upload attempt %d failed (%s); next in %.0f s", broadcast_id, attempt,
                        _error(exc), delay)
            return
        done = recording.with_(upload="uploaded", upload_attempts=attempt, upload_error=None,
                               object_etag=stored[0].etag, local_until=time.time() + self.local_grace,
                               extra={k: v for k, v in recording.extra.items() if k != "next_attempt"})
        meta_file.save(directory, done)
        log.info("recording %s uploaded to s3://%s/%s (%d bytes in %d part(s), ETag checked)", broadcast_id,
                 self.store.bucket, stored[0].key, stored[0].size, stored[0].parts)

    async def serve(self, request: web.Request, broadcast_id: str, name: str, content_type: str) -> web.StreamResponse:
        """The file from the storage: a redirect to a short-lived presigned URL."""
        url = await self.store.presign(self.store.key(broadcast_id, name))
        raise web.HTTPFound(url, headers={"Cache-Control": "private, no-store"})

    async def remove(self, broadcast_id: str) -> None:
        for name in self.FILES:
            await self.store.delete(self.store.key(broadcast_id, name))


__all__ = ["ObjectStore", "Stored", "StorageError", "Uploader"]
