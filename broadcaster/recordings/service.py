"""The node's recordings: made when a replay ends, expired after their retention, deleted on demand.

One task (:meth:`RecordingService.run`, owned by the app's ``cleanup_ctx``) looks at the node's
HLS directories every ``scan_interval`` seconds: a broadcast whose replay playlist has ended and has
no recording yet is remuxed to MP4 with a poster (PyAV, in a worker thread: :mod:`.remux`), and a
recording past its retention is deleted (logged).  Working from what is on disk, not from events, a
node that was down when a broadcast ended (or crashed while making it) makes it when it comes back.

Deleting a recording removes, together: its HLS (every segment, the journals), the MP4 and poster,
its chat timeline and reaction counts (:mod:`.timeline`), the chat history and reaction totals in the
bus, and the broadcast's comments in the moderation archive.  A tombstone ``recording.json`` stays.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from broadcaster.recordings import meta as meta_file
from broadcaster.recordings.chat_replay import MediaClock, replay_entries
from broadcaster.recordings.meta import MP4, POSTER, RecordingMeta, RecordingStatus
from broadcaster.recordings.remux import RemuxError, poster, remux, replay_playlist, top_rendition
from broadcaster.recordings.timeline import ChatTimeline
from ingest.hls.store import INDEX, MASTER
from moderation.write_behind import WriteBehind

log = logging.getLogger("onair.recordings")

DAY = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class _Comment:
    broadcast_id: str
    comment: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Removed:
    broadcast_id: str
    comment_id: str


@dataclass(frozen=True, slots=True)
class _Reactions:
    broadcast_id: str
    second: int
    counts: dict[str, int]


_TimelineOp = _Comment | _Removed | _Reactions


def _ended(hls_dir: Path) -> bool:
    """The broadcast's replay is complete: its top rendition's playlist has ``#EXT-X-ENDLIST``."""
    try:
        index = hls_dir / top_rendition(hls_dir) / INDEX
        with index.open("rb") as fh:
            fh.seek(max(0, index.stat().st_size - 64))
            return b"#EXT-X-ENDLIST" in fh.read()
    except (OSError, RemuxError):
        return False


class RecordingService:
    def __init__(self, data_dir: Path, timeline: ChatTimeline, *, retention_days: float = 0.0,
                 scan_interval: float = 2.0,
                 erase_chat: Callable[[str], Awaitable[None]] | None = None,
                 erase_archive: Callable[[str], Awaitable[int]] | None = None,
                 uploader: Any = None,
                 ended_at: Callable[[str], Awaitable[float | None]] | None = None) -> None:
        self.hls_root = data_dir / "hls"
        self.root = data_dir / "recordings"
        self.timeline = timeline
        self.retention_days = retention_days
        self.scan_interval = scan_interval
        self._erase_chat = erase_chat
        self._erase_archive = erase_archive
        self.uploader = uploader
        self._ended_at = ended_at
        self._locks: dict[str, asyncio.Lock] = {}
        #: told of each recording made ready here (the webhooks hub listens: recording.ready)
        self.on_ready: Callable[[str, RecordingMeta], None] | None = None
        #: what the chat relay records, written behind its comments and reactions (in order), so a
        #: comment's way to the screens never waits for the timeline's store; readers flush it first
        self._writes: WriteBehind[_TimelineOp] = WriteBehind(self._write_ops, name="chat-timeline")

    def start(self) -> None:
        self._writes.start()

    async def close(self) -> None:
        await self._writes.close()

    async def _write_ops(self, ops: list[_TimelineOp]) -> None:
        for op in ops:
            try:
                if isinstance(op, _Comment):
                    await self.timeline.add_comment(op.broadcast_id, op.comment)
                elif isinstance(op, _Removed):
                    await self.timeline.remove_comment(op.broadcast_id, op.comment_id)
                else:
                    await self.timeline.add_reactions(op.broadcast_id, op.second, op.counts)
            except (OSError, RedisError) as exc:  # the store is away (a Redis restart): one line, as the archive's
                log.error("broadcast %s: the chat timeline lost a %s: %s", op.broadcast_id, type(op).__name__[1:], exc)
            except Exception:  # noqa: BLE001 - the chat goes on; the replay misses this one
                log.exception("broadcast %s: the chat timeline lost a %s", op.broadcast_id, type(op).__name__[1:])

    def directory(self, broadcast_id: str) -> Path:
        return self.root / broadcast_id

    def hls_dir(self, broadcast_id: str) -> Path:
        return self.hls_root / broadcast_id

    def _lock(self, broadcast_id: str) -> asyncio.Lock:
        return self._locks.setdefault(broadcast_id, asyncio.Lock())

    # --- reading ----------------------------------------------------------------------------
    def meta(self, broadcast_id: str) -> RecordingMeta | None:
        return meta_file.load(self.directory(broadcast_id))

    def state(self, broadcast_id: str) -> RecordingMeta | None:
        """The recording as it stands: the saved one, or one being recorded (None: no media at all)."""
        saved = self.meta(broadcast_id)
        if saved is not None and saved.status is not RecordingStatus.RECORDING:
            return saved
        hls_dir = self.hls_dir(broadcast_id)
        if not (hls_dir / MASTER).is_file():
            return saved
        try:
            rendition = top_rendition(hls_dir)
            duration = sum(s.duration for s in replay_playlist(hls_dir, rendition).segments)
        except RemuxError:
            rendition, duration = None, 0.0
        base = saved or RecordingMeta()
        return base.with_(duration=round(duration, 3), rendition=rendition)

    def expires_at(self, recording: RecordingMeta) -> float | None:
        days = recording.retention_days if recording.retention_days is not None else self.retention_days
        start = recording.ended_at or recording.made_at
        if not days or start is None:
            return None
        return start + days * DAY

    async def chat(self, broadcast_id: str) -> list[dict[str, Any]]:
        """The chat replay: ``[{t, type, ...}]`` (comments, reaction seconds) in media time."""
        hls_dir = self.hls_dir(broadcast_id)

        def clock() -> MediaClock:
            try:
                return MediaClock(replay_playlist(hls_dir, top_rendition(hls_dir)).segments)
            except RemuxError:
                return MediaClock([])

        media_clock = await asyncio.to_thread(clock)
        await self._writes.flush()
        comments = await self.timeline.comments(broadcast_id)
        reactions = await self.timeline.reactions(broadcast_id)
        return replay_entries(media_clock, comments, reactions)

    # --- the chat relay's recorder (queued; a failed write is logged, the chat goes on) -----------
    async def comment(self, broadcast_id: str, comment: dict[str, Any]) -> None:
        await self._writes.submit(_Comment(broadcast_id, comment))

    async def comment_removed(self, broadcast_id: str, comment_id: str) -> None:
        await self._writes.submit(_Removed(broadcast_id, comment_id))

    async def reactions(self, broadcast_id: str, counts: dict[str, int]) -> None:
        await self._writes.submit(_Reactions(broadcast_id, int(time.time()), dict(counts)))

    async def erase_viewer(self, viewer_id: str) -> int:
        """Right of erasure: every comment ``viewer_id`` wrote leaves every chat replay."""
        await self._writes.flush()
        return await self.timeline.erase_viewer(viewer_id)

    # --- making -------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception:  # noqa: BLE001 - one bad recording must not stop the others
                log.exception("recordings scan failed")
            await asyncio.sleep(self.scan_interval)

    async def scan(self) -> None:
        names: set[str] = set()
        if self.hls_root.is_dir():
            names.update(p.name for p in self.hls_root.iterdir() if p.is_dir())
        if self.root.is_dir():
            names.update(p.name for p in self.root.iterdir() if p.is_dir())
        now = time.time()
        for broadcast_id in sorted(names):
            saved = self.meta(broadcast_id)
            if saved is None or saved.status is RecordingStatus.RECORDING:
                if await asyncio.to_thread(_ended, self.hls_dir(broadcast_id)):
                    await self.make(broadcast_id)
                continue
            if saved.status is RecordingStatus.DELETED:
                continue
            expires = self.expires_at(saved)
            if expires is not None and expires <= now:
                days = saved.retention_days if saved.retention_days is not None else self.retention_days
                log.info("recording %s expired (retention %g days): deleting it", broadcast_id, days)
                await self.delete(broadcast_id, "retention")
            elif self.uploader is not None and saved.status is RecordingStatus.READY:
                await self.uploader.step(self, broadcast_id, saved)

    async def make(self, broadcast_id: str) -> RecordingMeta:
        async with self._lock(broadcast_id):
            saved = self.meta(broadcast_id) or RecordingMeta()
            if saved.status is not RecordingStatus.RECORDING:
                return saved
            directory = self.directory(broadcast_id)
            hls_dir = self.hls_dir(broadcast_id)
            ended_at = saved.ended_at or (await self._ended_at(broadcast_id) if self._ended_at else None) \
                or time.time()
            started = time.monotonic()

            def work() -> tuple[Any, int]:
                made = remux(hls_dir, directory / MP4)
                poster(directory / MP4, directory / POSTER, at=min(1.0, made.duration / 2))
                return made, made.size

            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                made, size = await asyncio.to_thread(work)
            except (RemuxError, OSError, ValueError) as exc:
                failed = saved.with_(status=RecordingStatus.FAILED, ended_at=ended_at, error=str(exc)[:300])
                meta_file.save(directory, failed)
                log.error("recording %s could not be made: %s", broadcast_id, exc)
                return failed
            ready = saved.with_(status=RecordingStatus.READY, duration=round(made.duration, 3), size=size,
                                rendition=made.rendition, ended_at=ended_at, made_at=time.time(), error=None,
                                upload="pending" if self.uploader is not None else None)
            meta_file.save(directory, ready)
            if self.on_ready is not None:
                self.on_ready(broadcast_id, ready)
            log.info("recording %s ready: %.1f s of %s, %d bytes, made in %.2f s", broadcast_id, made.duration,
                     made.rendition, size, time.monotonic() - started)
            return ready

    async def set_retention(self, broadcast_id: str, days: float | None) -> RecordingMeta:
        async with self._lock(broadcast_id):
            current = self.meta(broadcast_id) or RecordingMeta()
            updated = current.with_(retention_days=days)
            meta_file.save(self.directory(broadcast_id), updated)
            return updated

    # --- deleting -----------------------------------------------------------------------------
    async def delete(self, broadcast_id: str, by: str, *, tombstone: bool = True) -> RecordingMeta:
        """Remove the recording's media, chat timeline, chat history and moderation archive; without
        ``tombstone`` (the broadcast itself is deleted) its directory goes too."""
        async with self._lock(broadcast_id):
            current = self.meta(broadcast_id) or RecordingMeta()
            directory = self.directory(broadcast_id)
            if self.uploader is not None and current.upload in ("uploaded", "uploading", "failed"):
                # first: if the storage cannot be reached nothing is deleted, and a retry can finish it
                await self.uploader.remove(broadcast_id)
            await asyncio.to_thread(shutil.rmtree, self.hls_dir(broadcast_id), True)
            for name in (MP4, POSTER):
                (directory / name).unlink(missing_ok=True)
            await self._writes.flush()
            await self.timeline.erase_broadcast(broadcast_id)
            if self._erase_chat is not None:
                await self._erase_chat(broadcast_id)
            archived = await self._erase_archive(broadcast_id) if self._erase_archive is not None else 0
            gone = RecordingMeta(status=RecordingStatus.DELETED, deleted_at=time.time(), deleted_by=by,
                                 ended_at=current.ended_at, retention_days=current.retention_days)
            if tombstone:
                meta_file.save(directory, gone)
            else:
                await asyncio.to_thread(shutil.rmtree, directory, True)
            log.info("recording %s deleted (%s): media, chat timeline, chat history and %d archived comments",
                     broadcast_id, by, archived)
            return gone


__all__ = ["RecordingService"]
