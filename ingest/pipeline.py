"""One live broadcast's path from units to HLS: the main-process side (asyncio).

An :class:`HlsPipeline` takes :class:`MediaUnit`s from a publisher edge
(``feed`` never blocks), passes them through the repair stage
(:class:`~ingest.repair.MediaRepair`, one per publish: what it repairs is
tallied in :attr:`HlsPipeline.health`), pipes them as FLV into a transcode worker process
(``python -m ingest.transcode.worker``), reads the worker's JSON events and
owns the playlists: the master once the worker reports its renditions, each
media playlist rewritten on every segment (a sliding window while live, the
full list + ``#EXT-X-ENDLIST`` once finished, kept as the replay).  With
``low_latency`` the worker writes CMAF parts: each media playlist is rewritten
on every part too (LL-HLS tags, preload hint, rendition reports), and its new
position is published to a :class:`~ingest.hls.watch.PlaylistWatch` so the
origin can answer blocked playlist requests the moment it is written.

The publisher's pace anchors media time to wall time: the smallest
``arrival − pts`` seen recently is when media time 0 was "live" (a unit that
waited in a socket buffer arrives late, none arrives early).  From it come the
publish-to-playlist delay (playlist write − the live moment of the newest media
it lists, so read gathering and transcoding count) and each segment's
``#EXT-X-PROGRAM-DATE-TIME``, which lets players line the audio rendition up
with the video ones.

A worker *generation* is one worker process.  A generation ends by
``finish()`` (EOF, the worker flushes), by a break (``mark_discontinuity``
after a publisher reconnect, or a new video configuration: EOF, then a fresh
worker for the new timestamps/config; an audio configuration arriving after the
worker started without it counts as a new configuration), or by a crash (a new
worker resumes at the next keyframe, after a back-off; a worker that is fed but
reports nothing for ``stall_timeout`` is killed and counts as a crash).  A
pipeline never gives up while its publisher sends: past ``max_restarts``
crashes within ``restart_window`` it retries every ``failing_retry`` seconds.  Every new generation's
first segments carry ``#EXT-X-DISCONTINUITY`` and continue the numbering.

The pending units are bounded in bytes: beyond ``max_pending_bytes`` units are
dropped (counted) until the next video keyframe, so a slow worker costs the
viewers a gap, never the node its memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ingest
from ingest import flv
from ingest.hls.playlist import AudioRendition, MediaPlaylist, RenditionReport, Variant, render_master
from ingest.hls.store import HlsStore, part_uri
from ingest.hls.watch import PlaylistPosition, PlaylistWatch
from ingest.health import MediaHealth
from ingest.media import MediaKind, MediaUnit
from ingest.repair import MediaRepair
from ingest.restarts import RestartPolicy
from ingest.transcode.events import PacketDropped
from ingest.transcode.ladder import Rendition, transcoded

log = logging.getLogger("ingest.pipeline")

_PROJECT_ROOT = str(Path(ingest.__file__).resolve().parent.parent)
_MAX_LINE = 1 << 16
_BATCH = 256


@dataclass(frozen=True)
class PipelineOptions:
    ladder: list[Rendition]
    segment_target: float = 2.0
    live_window: int = 6
    max_pending_bytes: int = 8 << 20  # bound on the pipe backlog; beyond it drop until next keyframe (counted)
    python: str = sys.executable
    #: after this many worker crashes within ``restart_window`` seconds, restart only every
    #: ``failing_retry`` seconds (never give up while the publisher sends)
    max_restarts: int = 5
    restart_window: float = 60.0
    failing_retry: float = 10.0
    #: how long ``finish`` waits for the worker to flush before killing it
    finish_timeout: float = 30.0
    #: a worker fed media that reports nothing (no stats, no segment) for this long is
    #: hung: killed and restarted like a crashed one
    stall_timeout: float = 15.0
    #: LL-HLS (CMAF parts, audio rendition, blocking reload) instead of MPEG-TS segments
    low_latency: bool = False
    part_target: float = 0.5


AUDIO = "audio"
#: publish-to-playlist delays kept for the figures (per pipeline)
_DELAY_SAMPLES = 120
#: video unit arrival offsets kept for the publisher's pace (about 20 s at 30 fps)
_ARRIVALS = 600
#: a change of arrival offset beyond this (seconds) means the timestamps restarted
_PACE_JUMP = 2.0

@dataclass(frozen=True)
class PipelineStats:
    segments_written: int
    restarts: int
    realtime_factor: float | None
    dropped_units: int
    worker_pid: int | None
    live: bool
    #: publish-to-playlist delay, seconds: the newest part's/segment's, and the median and
    #: maximum of the recent ones (None before the first)
    delay_last: float | None = None
    delay_p50: float | None = None
    delay_max: float | None = None
    #: worker processes that died (or were killed as stalled) so far
    worker_failures: int = 0


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_END = _Marker("end")      # finish(): EOF, flush, no new worker
_BREAK = _Marker("break")  # EOF, flush, next worker starts fresh (discontinuity)
_Item = MediaUnit | _Marker


@dataclass
class _RenditionState:
    rendition: Rendition
    playlist: MediaPlaylist
    width: int = 0
    height: int = 0
    codecs: str = ""
    frame_rate: float | None = None
    estimate: int | None = None
    bytes: int = 0
    seconds: float = 0.0
    peak: int = 0
    channels: int = 0  # audio rendition: the master's CHANNELS


class HlsPipeline:
    def __init__(self, broadcast_id: str, out_dir: Path, options: PipelineOptions,
                 watch: PlaylistWatch | None = None) -> None:
        self.broadcast_id = broadcast_id
        self.out_dir = Path(out_dir)
        self.options = options
        self.store = HlsStore(self.out_dir)
        self._watch = watch
        self._audio: _RenditionState | None = None
        #: monotonic arrival − pts/1000 of recent video units (see the module docstring)
        self._pace: deque[float] = deque(maxlen=_ARRIVALS)
        #: epoch seconds of media time 0 for this worker generation, fixed at its first segment
        self._date_anchor: float | None = None
        self._delays: deque[float] = deque(maxlen=_DELAY_SAMPLES)
        self.on_segment: Callable[[str, int, float], None] | None = None
        self.health = MediaHealth(broadcast_id)
        self._repair = MediaRepair()

        self._queue: deque[_Item] = deque()
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._skip_to_keyframe = False
        self._video_config: MediaUnit | None = None
        self._audio_config: MediaUnit | None = None
        self._worker_has_audio = False

        self._renditions: dict[str, _RenditionState] = {}
        self._pinned: list[Rendition] | None = None
        self._master_written: dict[str, int] = {}
        self._loaded: dict[str, MediaPlaylist] = {}

        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._generations = 0
        self._restarts_policy = RestartPolicy(options.max_restarts, options.restart_window, options.failing_retry)
        self._after_crash = False
        self._last_progress = 0.0
        self._last_write = 0.0
        self._writer_blocked = False
        self._finishing = False
        self._closed = False
        self._ended = False

        self._segments_written = 0
        self._restarts = 0
        self._dropped = 0
        self._realtime_factor: float | None = None
        self.last_error: str | None = None

    # --- public API ------------------------------------------------------

    @property
    def stats(self) -> PipelineStats:
        proc = self._proc
        running = proc is not None and proc.returncode is None
        delays = sorted(self._delays)
        return PipelineStats(
            segments_written=self._segments_written,
            restarts=self._restarts,
            realtime_factor=self._realtime_factor,
            dropped_units=self._dropped,
            worker_pid=proc.pid if running and proc is not None else None,
            live=running and not self._ended,
            delay_last=round(self._delays[-1], 3) if delays else None,
            delay_p50=round(delays[len(delays) // 2], 3) if delays else None,
            delay_max=round(delays[-1], 3) if delays else None,
            worker_failures=self.health.worker_failures,
        )

    @property
    def renditions(self) -> list[str]:
        return list(self._renditions)

    async def start(self) -> None:
        """Arm the pipeline; the worker is spawned once a video config and a keyframe arrived."""
        if self._task is not None or self._closed:
            return
        self._load_existing()
        self._task = asyncio.create_task(self._supervise(), name=f"hls-pipeline-{self.broadcast_id}")

    def feed(self, unit: MediaUnit) -> None:
        """Repair a unit and queue it for the worker.  Never blocks; drops (counted) beyond the bound."""
        if self._closed or self._finishing:
            return
        for repaired in self._repair.push(unit):
            self._enqueue(repaired)
        self.health.repaired(self._repair.take_repairs())

    def _flush_repair(self) -> None:
        """The publish ended: hand on what the repair stage holds; the next publish gets a fresh one."""
        for unit in self._repair.flush():
            self._enqueue(unit)
        self.health.repaired(self._repair.take_repairs())
        self._repair = MediaRepair()

    def _enqueue(self, unit: MediaUnit) -> None:
        if unit.config:
            if unit.kind is MediaKind.VIDEO:
                previous = self._video_config
                self._video_config = unit
                if previous is not None and previous.data != unit.data and self._generations:
                    # New SPS/PPS (resolution change, new encoder): start a fresh worker.
                    self._push(_BREAK)
            else:
                previous = self._audio_config
                self._audio_config = unit
                changed = previous is None or previous.data != unit.data
                if changed and self._generations:
                    # audio that came late, or a new audio configuration: a fresh worker that has it
                    log.info("broadcast %s: %s audio configuration, starting a new worker generation",
                             self.broadcast_id, "new" if previous is not None else "late")
                    self._push(_BREAK)
            return
        is_key = unit.kind is MediaKind.VIDEO and unit.keyframe
        size = len(unit.data)
        if self._skip_to_keyframe and not is_key:
            self._dropped += 1
            return
        if self._pending_bytes + size > self.options.max_pending_bytes:
            if not self._skip_to_keyframe:
                log.warning("broadcast %s: worker backlog over %d bytes, dropping until the next keyframe",
                            self.broadcast_id, self.options.max_pending_bytes)
            self._skip_to_keyframe = True
            self._dropped += 1
            return
        self._skip_to_keyframe = False
        self._pending_bytes += size
        if unit.kind is MediaKind.VIDEO:
            offset = time.monotonic() - unit.pts / 1000
            if self._pace and abs(offset - self._pace[-1]) > _PACE_JUMP:
                self._pace.clear()  # timestamps restarted (a reconnect): the old pace means nothing
            self._pace.append(offset)
        self._push(unit)

    def mark_discontinuity(self) -> None:
        """The publisher reconnected: timestamps restart, the next segments get a discontinuity."""
        if not self._closed and not self._finishing:
            self._flush_repair()
            self._push(_BREAK)

    async def finish(self, flush: bool = True) -> None:
        """End of broadcast: let the worker flush (not with ``flush=False``: kill it), then end the
        playlists as VOD."""
        if self._closed or self._finishing:
            return
        self._flush_repair()
        self._finishing = True
        self._push(_END)
        task = self._task
        if task is not None and flush:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.options.finish_timeout)
            except asyncio.TimeoutError:
                log.error("broadcast %s: worker did not flush within %.0f s, killing it",
                          self.broadcast_id, self.options.finish_timeout)
        await self.close()
        self._end_playlists()

    async def close(self) -> None:
        """Abort: kill the worker, cancel and await every task.  Idempotent."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._queue.clear()
        self._pending_bytes = 0
        if self._watch is not None:
            self._watch.forget(self.broadcast_id)  # held requests for this broadcast give up now

    # --- queue -----------------------------------------------------------

    def _push(self, item: _Item) -> None:
        self._queue.append(item)
        self._wake.set()

    def _pop(self) -> _Item:
        item = self._queue.popleft()
        if isinstance(item, MediaUnit):
            self._pending_bytes -= len(item.data)
        return item

    async def _wait_items(self) -> None:
        while not self._queue:
            self._wake.clear()
            await self._wake.wait()

    # --- supervision -----------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            try:
                if not await self._wait_for_start():
                    return
                outcome = await self._run_generation()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a pipeline bug costs a worker generation, not the broadcast
                log.exception("broadcast %s: HLS pipeline failed, starting a new worker generation", self.broadcast_id)
                self.last_error = "HLS pipeline error (see the node log)"
                outcome = "crash"
            if outcome == "end":
                return
            self._mark_discontinuity_all()
            self._after_crash = outcome == "crash"
            if outcome == "crash":
                self._restarts += 1
                delay = self._restart_delay()
                deadline = time.monotonic() + delay
                while not self._finishing and time.monotonic() < deadline:
                    await asyncio.sleep(min(0.1, delay))  # finish() does not wait out a back-off

    async def _wait_for_start(self) -> bool:
        """Discard until a video keyframe heads the queue; False once finish() was asked."""
        while True:
            await self._wait_items()
            item = self._queue[0]
            if item is _END:
                self._pop()
                return False
            if item is _BREAK:
                self._pop()
                self._mark_discontinuity_all()
                continue
            assert isinstance(item, MediaUnit)
            if item.kind is MediaKind.VIDEO and item.keyframe and self._video_config is not None:
                return True
            self._pop()
            if self._after_crash:
                self._dropped += 1  # lost while a worker restarts

    def _restart_delay(self) -> float:
        """Seconds before the next worker (:mod:`ingest.restarts`), logged."""
        restart = self._restarts_policy.crashed()
        if restart.became_failing:
            log.error("broadcast %s: transcode worker crashed %d times in %.0f s; retrying every %g s while "
                      "the publisher sends (last error: %s)", self.broadcast_id, restart.recent,
                      self.options.restart_window, restart.delay, self.last_error)
        elif not restart.failing:
            log.warning("broadcast %s: restarting transcode worker after a crash (last error: %s)",
                        self.broadcast_id, self.last_error)
        return restart.delay

    def _worker_config(self) -> str:
        renditions = self._pinned if self._pinned is not None else self.options.ladder
        start_seq = {name: state.playlist.next_seq for name, state in self._renditions.items()}
        if self._audio is not None:
            start_seq[AUDIO] = self._audio.playlist.next_seq
        for name, playlist in self._loaded.items():
            start_seq.setdefault(name, playlist.next_seq)
        return json.dumps({
            "out_dir": str(self.out_dir),
            "renditions": [r.to_dict() for r in renditions],
            "segment_target": self.options.segment_target,
            "start_seq": start_seq,
            "pinned": self._pinned is not None,
            "low_latency": self.options.low_latency,
            "part_target": self.options.part_target,
        })

    async def _run_generation(self) -> str:
        """Run one worker process; 'end', 'break' or 'crash'."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PROJECT_ROOT, env.get("PYTHONPATH")) if p)
        self.last_error = None
        proc = await asyncio.create_subprocess_exec(
            self.options.python, "-m", "ingest.transcode.worker", self._worker_config(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=env, limit=_MAX_LINE,
        )
        self._proc = proc
        self._generations += 1
        log.info("broadcast %s: transcode worker %d started (generation %d)", self.broadcast_id, proc.pid, self._generations)
        assert proc.stdout is not None and proc.stderr is not None
        tasks = [
            asyncio.create_task(self._read_events(proc.stdout), name=f"hls-events-{self.broadcast_id}"),
            asyncio.create_task(self._read_stderr(proc.stderr, proc.pid), name=f"hls-stderr-{self.broadcast_id}"),
        ]
        writer = asyncio.create_task(self._write(proc), name=f"hls-writer-{self.broadcast_id}")
        loop = asyncio.get_running_loop()
        self._last_progress = self._last_write = loop.time()
        tasks.append(asyncio.create_task(self._watchdog(proc), name=f"hls-watchdog-{self.broadcast_id}"))
        try:
            rc = await proc.wait()
            await asyncio.gather(*tasks[:2], return_exceptions=True)
            marker: _Marker | None = None
            if writer.done() and not writer.cancelled() and writer.exception() is None:
                marker = writer.result()
        finally:
            if proc.returncode is None:
                proc.kill()
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()
            for task in (*tasks, writer):
                task.cancel()
            await asyncio.gather(*tasks, writer, return_exceptions=True)
        if marker is _END:
            if rc != 0:
                self.health.worker_failed()
                log.error("broadcast %s: worker %d failed while flushing (exit %s): %s",
                          self.broadcast_id, proc.pid, rc, self.last_error)
            else:
                log.info("broadcast %s: worker %d flushed and exited", self.broadcast_id, proc.pid)
            return "end"
        if marker is _BREAK and rc == 0:
            log.info("broadcast %s: worker %d ended for a discontinuity", self.broadcast_id, proc.pid)
            return "break"
        self.health.worker_failed()
        log.error("broadcast %s: transcode worker %d died (exit %s): %s",
                  self.broadcast_id, proc.pid, rc, self.last_error or "no error reported")
        return "crash"

    async def _write(self, proc: asyncio.subprocess.Process) -> _Marker | None:
        """Feed the worker: FLV header, stored configs, then units from a keyframe on."""
        stdin = proc.stdin
        assert stdin is not None and self._video_config is not None
        audio = self._audio_config
        self._worker_has_audio = audio is not None
        chunks = [flv.file_header(has_audio=audio is not None), flv.encode_unit(self._video_config)]
        if audio is not None:
            chunks.append(flv.encode_unit(audio))
        try:
            while True:
                marker: _Marker | None = None
                while self._queue and len(chunks) < _BATCH:
                    item = self._pop()
                    if isinstance(item, _Marker):
                        marker = item
                        break
                    if item.kind is MediaKind.AUDIO and audio is None:
                        continue  # the worker has no audio stream for late audio
                    chunks.append(flv.encode_unit(item))
                if chunks:
                    self._last_write = asyncio.get_running_loop().time()
                    stdin.write(b"".join(chunks))
                    chunks = []
                    self._writer_blocked = True
                    try:
                        await stdin.drain()
                    finally:
                        self._writer_blocked = False
                if marker is not None:
                    stdin.close()
                    with contextlib.suppress(OSError):
                        await stdin.wait_closed()
                    return marker
                await self._wait_items()
        except (BrokenPipeError, ConnectionResetError):
            return None

    async def _watchdog(self, proc: asyncio.subprocess.Process) -> None:
        """Kill a worker that is fed but silent (deadlocked or stopped): the crash path restarts it."""
        loop = asyncio.get_running_loop()
        timeout = self.options.stall_timeout
        while proc.returncode is None:
            await asyncio.sleep(min(1.0, timeout / 4))
            # fed: it has media waiting, or was written to for ``timeout`` after it last reported (a worker
            # holding the end of a part while its publisher is away is waiting, not stalled)
            fed = self._writer_blocked or bool(self._queue) or self._last_write - self._last_progress > timeout
            if fed and loop.time() - self._last_progress > timeout:
                self.last_error = f"worker stalled: fed for {timeout:.0f} s without reporting progress"
                log.error("broadcast %s: %s, killing worker %d", self.broadcast_id, self.last_error, proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                return

    async def _read_events(self, stdout: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stdout.readline()
            except ValueError:  # over the line limit: not something our worker writes
                log.warning("broadcast %s: oversized worker line dropped", self.broadcast_id)
                continue
            if not line:
                return
            self._last_progress = asyncio.get_running_loop().time()
            try:
                event = json.loads(line)
                self._on_event(event)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("broadcast %s: bad worker event %r: %s", self.broadcast_id, line[:200], exc)
            except Exception:  # noqa: BLE001 - keep reading: the worker blocks if its stdout fills
                log.exception("broadcast %s: failed to handle worker event %r", self.broadcast_id, line[:200])

    async def _read_stderr(self, stderr: asyncio.StreamReader, pid: int) -> None:
        while True:
            try:
                line = await stderr.readline()
            except ValueError:
                continue
            if not line:
                return
            log.info("broadcast %s worker %d: %s", self.broadcast_id, pid, line.decode(errors="replace").rstrip()[:500])

    # --- events and playlists ---------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "part":
            self._on_part(event)
        elif kind == "segment":
            self._on_worker_segment(str(event["rendition"]), int(event["seq"]), float(event["duration"]),
                                    int(event["bytes"]), event.get("uri"), event.get("first_pts"))
        elif kind == "init":
            self._state(str(event["rendition"])).playlist.map_uri = str(event["uri"])
        elif kind == "started":
            self._on_started(event["renditions"], event.get("audio"))
        elif kind == "stats":
            factor = event.get("realtime_factor")
            self._realtime_factor = float(factor) if factor is not None else None
        elif kind == PacketDropped.NAME:
            self.health.packet_dropped(PacketDropped.from_json(event))
        elif kind == "error":
            self.last_error = str(event.get("message"))[:500]
            log.error("broadcast %s: transcode worker error: %s", self.broadcast_id, self.last_error)
        else:
            raise ValueError(f"unknown event {kind!r}")

    def _new_playlist(self, name: str) -> MediaPlaylist:
        part_target = self.options.part_target if self.options.low_latency else None
        playlist = self._loaded.pop(name, None)
        if playlist is None:
            return MediaPlaylist(self.options.segment_target, self.options.live_window, part_target=part_target)
        playlist.window = self.options.live_window
        playlist.ended = False
        playlist.part_target = part_target
        playlist.mark_discontinuity()  # a previous run of this broadcast
        return playlist

    def _state(self, name: str) -> _RenditionState:
        state = self._audio if name == AUDIO and self._audio is not None else self._renditions.get(name)
        if state is None:
            raise ValueError(f"event for unknown rendition {name!r}")
        return state

    def _media_states(self) -> list[tuple[str, _RenditionState]]:
        states = list(self._renditions.items())
        if self._audio is not None:
            states.append((AUDIO, self._audio))
        return states

    def _on_started(self, reported: list[dict[str, Any]], audio: dict[str, Any] | None = None) -> None:
        by_name = {r.name: r for r in (self._pinned or self.options.ladder)}
        renditions: list[Rendition] = []
        if audio is not None:
            if self._audio is None:
                self._audio = _RenditionState(Rendition(AUDIO, True, None, None), self._new_playlist(AUDIO))
            self._audio.codecs = str(audio.get("codecs") or "mp4a.40.2")
            self._audio.estimate = int(audio["bandwidth"]) if audio.get("bandwidth") else None
            self._audio.channels = int(audio.get("channels") or 0)
        for info in reported:
            name = str(info["name"])
            rendition = by_name.get(name) or transcoded(int(info["height"]))
            renditions.append(rendition)
            state = self._renditions.get(name)
            if state is None:
                state = self._renditions[name] = _RenditionState(rendition, self._new_playlist(name))
            state.width = int(info["width"])
            state.height = int(info["height"])
            state.codecs = str(info["codecs"])
            state.frame_rate = float(info["frame_rate"]) if info.get("frame_rate") else None
            state.estimate = int(info["bandwidth"]) if info.get("bandwidth") else None
        if self._pinned is None:
            self._pinned = renditions
            log.info("broadcast %s: renditions %s", self.broadcast_id,
                     ", ".join(f"{s.rendition.name} {s.width}x{s.height}" for s in self._renditions.values()))
        self._write_master()

    def _on_part(self, event: dict[str, Any]) -> None:
        name = str(event["rendition"])
        state = self._state(name)
        playlist = state.playlist
        seq, index = int(event["seq"]), int(event["index"])
        if seq != playlist.next_seq or index != len(playlist.parts):
            log.warning("broadcast %s: %s part %d.%d arrived, expected %d.%d", self.broadcast_id, name, seq, index,
                        playlist.next_seq, len(playlist.parts))
        playlist.add_part(float(event["duration"]), str(event["uri"]), bool(event["independent"]))
        self._write_media(name, playlist)
        if name != AUDIO:
            self._record_delay(int(event["last_pts"]))

    def _record_delay(self, last_pts: int) -> None:
        """The playlist listing media up to ``last_pts`` was just written: how long after it was live."""
        if self._pace:
            live_at = min(self._pace) + last_pts / 1000
            self._delays.append(max(0.0, time.monotonic() - live_at))

    def _program_date(self, first_pts: int | None) -> float | None:
        """Epoch seconds at which media time ``first_pts`` was live (``#EXT-X-PROGRAM-DATE-TIME``)."""
        if first_pts is None or not self._pace:
            return None
        if self._date_anchor is None:
            self._date_anchor = time.time() - time.monotonic() + min(self._pace)
        return self._date_anchor + first_pts / 1000

    def _write_media(self, name: str, playlist: MediaPlaylist) -> None:
        """Write one media playlist and tell the origin where its live edge now is."""
        hint = None
        reports: list[RenditionReport] = []
        if playlist.low_latency and not playlist.ended:
            hint = part_uri(playlist.next_seq, len(playlist.parts))
            if name != AUDIO:
                for other, state in self._renditions.items():
                    sibling = state.playlist
                    if other != name and (sibling.last_part is not None or sibling.last_msn >= 0):
                        last_msn, last_part = sibling.last_part or (sibling.last_msn, None)
                        reports.append(RenditionReport(f"../{other}/index.m3u8", last_msn, last_part))
        self.store.write_media(name, playlist, hint, reports)
        if self._watch is not None and playlist.part_target is not None:
            last = playlist.last_part or (playlist.last_msn, -1)
            self._watch.publish(self.broadcast_id, name, PlaylistPosition(
                last_msn=playlist.last_msn, part_msn=last[0], last_part=last[1],
                part_target=playlist.part_target,
                target_duration=float(playlist.target_duration), hint_uri=hint, ended=playlist.ended))

    def _on_worker_segment(self, name: str, seq: int, duration: float, size: int, uri: str | None = None,
                           first_pts: int | None = None) -> None:
        state = self._state(name)
        playlist = state.playlist
        if seq != playlist.next_seq:
            log.warning("broadcast %s: %s segment %d arrived, expected %d", self.broadcast_id, name, seq, playlist.next_seq)
        segment = playlist.add(duration, uri or f"{seq}.ts", self._program_date(first_pts))
        self.store.record_segment(name, segment)  # every segment, for a replay after a node crash
        first = state.seconds == 0
        state.bytes += size
        state.seconds += duration
        state.peak = max(state.peak, int(size * 8 / duration))
        self._write_media(name, playlist)
        if playlist.low_latency and seq >= playlist.window:
            # the segment that just left the live window: no playlist lists its parts any more
            self.store.remove_parts(name, seq - playlist.window)
        if name == AUDIO:
            return
        if not playlist.low_latency and first_pts is not None:
            frame_ms = 1000 / state.frame_rate if state.frame_rate else 0
            self._record_delay(int(first_pts + duration * 1000 - frame_ms))
        self._segments_written += 1
        written = self._master_written.get(name, 0)
        if first or state.peak > written * 1.1:
            self._write_master()
        if self.on_segment is not None:
            try:
                self.on_segment(name, seq, duration)
            except Exception:  # noqa: BLE001 - a metrics hook must not stop packaging
                log.exception("broadcast %s: on_segment hook failed", self.broadcast_id)

    def _bandwidth(self, state: _RenditionState) -> tuple[int, int | None]:
        average = int(state.bytes * 8 / state.seconds) if state.seconds else None
        peak = max(state.peak, state.estimate or 0)
        if not peak:
            peak = 2_000_000  # passthrough before its first segment: a placeholder until measured
        return peak, average

    def _write_master(self) -> None:
        variants = []
        audio_bits = 0
        if self._audio is not None:
            audio_bits = int(self._audio.bytes * 8 / self._audio.seconds) if self._audio.seconds else (self._audio.estimate or 0)
        for name, state in self._renditions.items():
            peak, average = self._bandwidth(state)
            self._master_written[name] = peak
            if self._audio is not None:
                # measured video-only figures; the variant plays with the audio rendition
                peak += audio_bits if state.seconds else 0
                average = average + audio_bits if average is not None else None
            variants.append(Variant(f"{name}/index.m3u8", peak, state.codecs, state.width, state.height,
                                    average, state.frame_rate))
        audio = None
        if self._audio is not None:
            audio = AudioRendition(f"{AUDIO}/index.m3u8", channels=self._audio.channels or None)
        if variants:
            self.store.write_master(render_master(variants, audio))

    def _mark_discontinuity_all(self) -> None:
        self._date_anchor = None  # a new generation: timestamps may have restarted
        for _, state in self._media_states():
            # parts of a segment the dead worker never finished are gone; the next worker
            # writes that segment number again
            state.playlist.drop_parts()
            state.playlist.mark_discontinuity()

    def _end_playlists(self) -> None:
        if self._ended:
            return
        self._ended = True
        # with the renditions of a previous run (node restart) that no worker of this run continued
        playlists = [(name, state.playlist) for name, state in self._media_states()] + list(self._loaded.items())
        for name, playlist in playlists:
            playlist.drop_parts()
            if playlist.segments:
                playlist.end()
                self._write_media(name, playlist)
            # a killed worker leaves its half-written segment behind
            for partial in self.store.rendition_dir(name).glob(".*.tmp"):
                partial.unlink(missing_ok=True)
        self._write_master()
        if self._watch is not None:
            self._watch.forget(self.broadcast_id)

    def _load_existing(self) -> None:
        """Playlists a previous run of this broadcast left (node restart): continue their numbering."""
        names = {r.name for r in self.options.ladder}
        if self.out_dir.is_dir():
            names.update(p.name for p in self.out_dir.iterdir() if p.is_dir())
        for name in sorted(names):
            playlist = self.store.load_media(name, self.options.live_window, self.options.segment_target)
            if playlist is not None and playlist.segments:
                self._loaded[name] = playlist
