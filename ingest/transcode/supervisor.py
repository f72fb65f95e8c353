"""A broadcast's transcode worker processes: spawn, feed, read, watch, restart.

A worker *generation* is one process (``python -m ingest.transcode.worker``).
It is fed FLV from the broadcast's :class:`~ingest.backlog.Backlog` (header,
the stored configurations, then units from a keyframe on), reports typed
events on stdout (:mod:`ingest.transcode.events`; the media ones go to the
packager) and logs on stderr.  A generation ends by ``END`` (EOF, the worker
flushes), by ``BREAK`` (EOF, then a fresh worker: a discontinuity), or by a
crash (a new worker resumes at the next keyframe after a back-off from
:class:`~ingest.restarts.RestartPolicy`; a worker that is fed but reports
nothing for ``stall_timeout`` is killed by the watchdog and counts as a
crash).  It never gives up while the publisher sends: past ``max_restarts``
crashes within ``restart_window`` it retries every ``failing_retry`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import ingest
from ingest import flv
from ingest.backlog import BREAK, END, Backlog, Marker
from ingest.health import MediaHealth
from ingest.hls.packager import HlsPackager
from ingest.media import MediaKind, MediaUnit
from ingest.restarts import RestartPolicy
from ingest.transcode.events import PacketDropped, Stats, WorkerError, WorkerEvent, parse

log = logging.getLogger("ingest.pipeline")

_PROJECT_ROOT = str(Path(ingest.__file__).resolve().parent.parent)
_MAX_LINE = 1 << 16
_BATCH = 256


def worker_env() -> dict[str, str]:
    """The worker's environment: the node's, with the project importable (a source checkout)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PROJECT_ROOT, env.get("PYTHONPATH")) if p)
    return env


class WorkerSupervisor:
    def __init__(self, broadcast_id: str, backlog: Backlog, packager: HlsPackager, health: MediaHealth, *,
                 python: str, restarts: RestartPolicy, stall_timeout: float, restart_window: float,
                 configs: Callable[[], tuple[MediaUnit | None, MediaUnit | None]],
                 finishing: Callable[[], bool]) -> None:
        self.broadcast_id = broadcast_id
        self.backlog = backlog
        self.packager = packager
        self.health = health
        self.python = python
        self.stall_timeout = stall_timeout
        self.restart_window = restart_window
        #: the stored video and audio configurations (sequence headers) a new worker starts with
        self._configs = configs
        self._finishing = finishing
        self._policy = restarts
        self.proc: asyncio.subprocess.Process | None = None
        self.generations = 0
        self.restarts = 0
        self.realtime_factor: float | None = None
        self.last_error: str | None = None
        self._after_crash = False
        self._last_progress = 0.0
        self._last_write = 0.0
        self._writer_blocked = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def run(self) -> None:
        """Worker generations until ``END`` (the pipeline's task)."""
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
            self.packager.mark_discontinuity_all()
            self._after_crash = outcome == "crash"
            if outcome == "crash":
                self.restarts += 1
                delay = self._restart_delay()
                deadline = time.monotonic() + delay
                while not self._finishing() and time.monotonic() < deadline:
                    await asyncio.sleep(min(0.1, delay))  # finish() does not wait out a back-off

    async def _wait_for_start(self) -> bool:
        """Discard until a video keyframe heads the backlog; False once finish() was asked."""
        backlog = self.backlog
        while True:
            await backlog.wait()
            item = backlog.head()
            if item is END:
                backlog.pop()
                return False
            if item is BREAK:
                backlog.pop()
                self.packager.mark_discontinuity_all()
                continue
            assert isinstance(item, MediaUnit)
            if item.kind is MediaKind.VIDEO and item.keyframe and self._configs()[0] is not None:
                return True
            backlog.pop()
            if self._after_crash:
                backlog.dropped += 1  # lost while a worker restarts

    def _restart_delay(self) -> float:
        """Seconds before the next worker (:mod:`ingest.restarts`), logged."""
        restart = self._policy.crashed()
        if restart.became_failing:
            log.error("broadcast %s: transcode worker crashed %d times in %.0f s; retrying every %g s while "
                      "the publisher sends (last error: %s)", self.broadcast_id, restart.recent,
                      self.restart_window, restart.delay, self.last_error)
        elif not restart.failing:
            log.warning("broadcast %s: restarting transcode worker after a crash (last error: %s)",
                        self.broadcast_id, self.last_error)
        return restart.delay

    async def _run_generation(self) -> str:
        """Run one worker process; 'end', 'break' or 'crash'."""
        self.last_error = None
        proc = await asyncio.create_subprocess_exec(
            self.python, "-m", "ingest.transcode.worker", self.packager.worker_config(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=worker_env(), limit=_MAX_LINE,
        )
        self.proc = proc
        self.generations += 1
        log.info("broadcast %s: transcode worker %d started (generation %d)", self.broadcast_id, proc.pid, self.generations)
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
            marker: Marker | None = None
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
        if marker is END:
            if rc != 0:
                self.health.worker_failed()
                log.error("broadcast %s: worker %d failed while flushing (exit %s): %s",
                          self.broadcast_id, proc.pid, rc, self.last_error)
            else:
                log.info("broadcast %s: worker %d flushed and exited", self.broadcast_id, proc.pid)
            return "end"
        if marker is BREAK and rc == 0:
            log.info("broadcast %s: worker %d ended for a discontinuity", self.broadcast_id, proc.pid)
            return "break"
        self.health.worker_failed()
        log.error("broadcast %s: transcode worker %d died (exit %s): %s",
                  self.broadcast_id, proc.pid, rc, self.last_error or "no error reported")
        return "crash"

    async def _write(self, proc: asyncio.subprocess.Process) -> Marker | None:
        """Feed the worker: FLV header, stored configs, then units from a keyframe on."""
        stdin = proc.stdin
        video, audio = self._configs()
        assert stdin is not None and video is not None
        chunks = [flv.file_header(has_audio=audio is not None), flv.encode_unit(video)]
        if audio is not None:
            chunks.append(flv.encode_unit(audio))
        backlog = self.backlog
        try:
            while True:
                marker: Marker | None = None
                while backlog and len(chunks) < _BATCH:
                    item = backlog.pop()
                    if isinstance(item, Marker):
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
                await backlog.wait()
        except (BrokenPipeError, ConnectionResetError):
            return None

    async def _watchdog(self, proc: asyncio.subprocess.Process) -> None:
        """Kill a worker that is fed but silent (deadlocked or stopped): the crash path restarts it."""
        loop = asyncio.get_running_loop()
        timeout = self.stall_timeout
        while proc.returncode is None:
            await asyncio.sleep(min(1.0, timeout / 4))
            # fed: it has media waiting, or was written to for ``timeout`` after it last reported (a worker
            # holding the end of a part while its publisher is away is waiting, not stalled)
            fed = self._writer_blocked or bool(self.backlog) or self._last_write - self._last_progress > timeout
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
                self._on_event(parse(line))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("broadcast %s: bad worker event %r: %s", self.broadcast_id, line[:200], exc)
            except Exception:  # noqa: BLE001 - keep reading: the worker blocks if its stdout fills
                log.exception("broadcast %s: failed to handle worker event %r", self.broadcast_id, line[:200])

    def _on_event(self, event: WorkerEvent) -> None:
        if isinstance(event, Stats):
            self.realtime_factor = event.realtime_factor
        elif isinstance(event, PacketDropped):
            self.health.packet_dropped(event)
        elif isinstance(event, WorkerError):
            self.last_error = event.message
            log.error("broadcast %s: transcode worker error: %s", self.broadcast_id, self.last_error)
        else:
            self.packager.on_event(event)

    async def _read_stderr(self, stderr: asyncio.StreamReader, pid: int) -> None:
        while True:
            try:
                line = await stderr.readline()
            except ValueError:
                continue
            if not line:
                return
            log.info("broadcast %s worker %d: %s", self.broadcast_id, pid, line.decode(errors="replace").rstrip()[:500])
