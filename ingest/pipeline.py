"""One live broadcast's path from units to HLS: the main-process side (asyncio).

An :class:`HlsPipeline` takes :class:`MediaUnit`s from a publisher edge
(``feed`` never blocks), passes them through the repair stage
(:class:`~ingest.repair.MediaRepair`, one per publish: what it repairs is
tallied in :attr:`HlsPipeline.health`) into a :class:`~ingest.backlog.Backlog`
bounded in bytes, and wires the parts that do the rest:

- :mod:`ingest.transcode.supervisor` — the worker processes: FLV into
  ``python -m ingest.transcode.worker``, its typed events
  (:mod:`ingest.transcode.events`) out, the watchdog and the restart budget
- :mod:`ingest.hls.packager` — the master and media playlists (LL-HLS parts,
  the live window, the replay once ended)
- :mod:`ingest.hls.clock` — the publisher's pace: publish-to-playlist delay
  and ``#EXT-X-PROGRAM-DATE-TIME``

A worker generation ends by ``finish()`` (EOF, the worker flushes), by a break
(``mark_discontinuity`` after a publisher reconnect, or a new video
configuration: EOF, then a fresh worker for the new timestamps/config; an audio
configuration arriving after the worker started without it counts as a new
configuration), or by a crash.  Every new generation's first segments carry
``#EXT-X-DISCONTINUITY`` and continue the numbering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.backlog import BREAK, END, Backlog
from ingest.health import MediaHealth
from ingest.hls.clock import PaceClock
from ingest.hls.packager import AUDIO, HlsPackager
from ingest.hls.store import HlsStore
from ingest.hls.watch import PlaylistWatch
from ingest.media import MediaKind, MediaUnit
from ingest.repair import MediaRepair
from ingest.restarts import RestartPolicy
from ingest.transcode.ladder import Rendition
from ingest.transcode.supervisor import WorkerSupervisor

log = logging.getLogger("ingest.pipeline")


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


class HlsPipeline:
    def __init__(self, broadcast_id: str, out_dir: Path, options: PipelineOptions,
                 watch: PlaylistWatch | None = None) -> None:
        self.broadcast_id = broadcast_id
        self.out_dir = Path(out_dir)
        self.options = options
        self._watch = watch
        self.health = MediaHealth(broadcast_id)
        self._repair = MediaRepair()
        self.clock = PaceClock()
        self.packager = HlsPackager(broadcast_id, self.out_dir, self.clock, ladder=options.ladder,
                                    segment_target=options.segment_target, live_window=options.live_window,
                                    low_latency=options.low_latency, part_target=options.part_target, watch=watch)
        self.store: HlsStore = self.packager.store
        self.backlog = Backlog(options.max_pending_bytes)
        self._video_config: MediaUnit | None = None
        self._audio_config: MediaUnit | None = None
        self.supervisor = WorkerSupervisor(
            broadcast_id, self.backlog, self.packager, self.health, python=options.python,
            restarts=RestartPolicy(options.max_restarts, options.restart_window, options.failing_retry),
            stall_timeout=options.stall_timeout, restart_window=options.restart_window,
            configs=lambda: (self._video_config, self._audio_config), finishing=lambda: self._finishing)
        self._task: asyncio.Task[None] | None = None
        self._finishing = False
        self._closed = False

    # --- public API ------------------------------------------------------

    @property
    def stats(self) -> PipelineStats:
        proc = self.supervisor.proc
        running = self.supervisor.running
        last, p50, top = self.clock.delay_figures()
        return PipelineStats(
            segments_written=self.packager.segments_written,
            restarts=self.supervisor.restarts,
            realtime_factor=self.supervisor.realtime_factor,
            dropped_units=self.backlog.dropped,
            worker_pid=proc.pid if running and proc is not None else None,
            live=running and not self.packager.ended,
            delay_last=last,
            delay_p50=p50,
            delay_max=top,
            worker_failures=self.health.worker_failures,
        )

    @property
    def renditions(self) -> list[str]:
        return self.packager.renditions

    @property
    def on_segment(self) -> Callable[[str, int, float], None] | None:
        """Called with (rendition, seq, duration) after each video segment is listed (metrics)."""
        return self.packager.on_segment

    @on_segment.setter
    def on_segment(self, hook: Callable[[str, int, float], None] | None) -> None:
        self.packager.on_segment = hook

    @property
    def last_error(self) -> str | None:
        """The worker's last reported error (or the stall that killed it); None while it runs cleanly."""
        return self.supervisor.last_error

    @property
    def pending_bytes(self) -> int:
        return self.backlog.pending_bytes

    async def start(self) -> None:
        """Arm the pipeline; the worker is spawned once a video config and a keyframe arrived."""
        if self._task is not None or self._closed:
            return
        self.packager.load_existing()
        self._task = asyncio.create_task(self.supervisor.run(), name=f"hls-pipeline-{self.broadcast_id}")

    def feed(self, unit: MediaUnit) -> None:
        """Repair a unit and queue it for the worker.  Never blocks; drops (counted) beyond the bound."""
        if self._closed or self._finishing:
            return
        for repaired in self._repair.push(unit):
            self._enqueue(repaired)
        self.health.repaired(self._repair.take_repairs())

    def mark_discontinuity(self) -> None:
        """The publisher reconnected: timestamps restart, the next segments get a discontinuity."""
        if not self._closed and not self._finishing:
            self._flush_repair()
            self.backlog.push(BREAK)

    async def finish(self, flush: bool = True) -> None:
        """End of broadcast: let the worker flush (not with ``flush=False``: kill it), then end the
        playlists as VOD."""
        if self._closed or self._finishing:
            return
        self._flush_repair()
        self._finishing = True
        self.backlog.push(END)
        task = self._task
        if task is not None and flush:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.options.finish_timeout)
            except asyncio.TimeoutError:
                log.error("broadcast %s: worker did not flush within %.0f s, killing it",
                          self.broadcast_id, self.options.finish_timeout)
        await self.close()
        self.packager.end_playlists()

    async def close(self) -> None:
        """Abort: kill the worker, cancel and await every task.  Idempotent."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.backlog.clear()
        if self._watch is not None:
            self._watch.forget(self.broadcast_id)  # held requests for this broadcast give up now

    # --- into the backlog --------------------------------------------------

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
                if previous is not None and previous.data != unit.data and self.supervisor.generations:
                    # New SPS/PPS (resolution change, new encoder): start a fresh worker.
                    self.backlog.push(BREAK)
            else:
                previous = self._audio_config
                self._audio_config = unit
                changed = previous is None or previous.data != unit.data
                if changed and self.supervisor.generations:
                    # audio that came late, or a new audio configuration: a fresh worker that has it
                    log.info("broadcast %s: %s audio configuration, starting a new worker generation",
                             self.broadcast_id, "new" if previous is not None else "late")
                    self.backlog.push(BREAK)
            return
        overflowing = self.backlog.overflowing
        if not self.backlog.admit(unit):
            if not overflowing and self.backlog.overflowing:
                log.warning("broadcast %s: worker backlog over %d bytes, dropping until the next keyframe",
                            self.broadcast_id, self.options.max_pending_bytes)
            return
        if unit.kind is MediaKind.VIDEO:
            self.clock.arrived(unit.pts)
        self.backlog.push(unit)


__all__ = ["AUDIO", "HlsPipeline", "PipelineOptions", "PipelineStats"]
