"""One RTMP connection, the half that runs in the protocol callbacks (no awaiting here): each read
fed to the pure :class:`RtmpSession`, media handed to the sink right there, the events that must await
queued (reading paused) for the connection's task (:mod:`ingest.rtmp.connection_task`), reads
coalesced while publishing, and the one timer that checks timeouts and progress.  See
:mod:`ingest.rtmp.server` for the whole picture."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, cast

from ingest.rtmp.errors import RtmpProtocolError
from ingest.rtmp.limits import Progress, Silent, Stalled, next_check
from ingest.rtmp.events import Connected, Event, MetadataReceived, UnitReceived
from ingest.rtmp.session import RtmpSession
from ingest.source import PublishSink

if TYPE_CHECKING:
    from ingest.rtmp.server import RtmpServer

logger = logging.getLogger("onair.rtmp")

#: A read this large means the publisher sends faster than the kernel's receive
#: buffer holds for the pause: read again at once instead of pausing, so a
#: high bitrate is never throttled by the pause.
_COALESCE_MAX_READ = 128 * 1024


class ConnectionCallbacks(asyncio.Protocol):
    """One client: its session, its sink (while publishing) and its socket; the callbacks half.

    Callbacks (``data_received`` ...) do the per-read work without awaiting;
    :meth:`Connection.run <ingest.rtmp.connection_task.Connection.run>`, the connection's task,
    does what must await and the close.
    """

    def __init__(self, server: RtmpServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.session = RtmpSession(app_name=server.app_name, max_message_size=server.max_message_size,
                                   pre_accept_message_size=server.limits.pre_accept_message_size)
        self.progress: Progress | None = None
        #: the address the admission counted this connection under (left once, when it is lost)
        self._admitted: str | None = None
        self.sink: PublishSink | None = None
        self.key: str | None = None
        self.closing = False
        #: events that must await, in order; non-empty (or being handled) while ``_busy``
        self._backlog: deque[Event] = deque()
        #: bytes received while busy (reading is paused, so at most a read or two)
        self._held = bytearray()
        self._busy = False
        self._eof = False
        self._error: BaseException | None = None
        #: set once the task takes over the end of the connection: callbacks stop parsing
        self._stopped = False
        self._waiter: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] = self.loop.create_future()
        self._write_paused_at: float | None = None
        self._write_resumed: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._coalescing: asyncio.TimerHandle | None = None
        self._last_data = self._handshake_deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    async def run(self) -> None:
        """The connection's task, given to the server on connect: :class:`ingest.rtmp.connection_task.Connection`."""
        raise NotImplementedError

    # -- protocol callbacks (no awaiting here) ------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
        address = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        admission = self.server.admission
        if admission is not None and not self.server._closed:
            refusal = admission.enter(address)
            if refusal is not None:
                # counted by the admission; one line a connection would let a flood fill the log
                logger.debug("rtmp %s: refused (%s)", self.peer, refusal)
                transport.abort()
                self._stopped = True
                return
            self._admitted = address
        if not self.server._adopt(self):
            transport.close()
            self._stopped = True
            return
        # From here, as a read per coroutine did: after the TLS handshake of RTMPS.
        self._last_data = now = self.loop.time()
        self.progress = Progress(self.server.limits, now)
        self._handshake_deadline = now + self.server.handshake_timeout
        self._timer = self.loop.call_at(min(self._handshake_deadline, now + self.server.limits.accept_timeout),
                                        self._check_timeouts)

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        self._last_data = self.loop.time()
        if self._busy:
            self._held += data
            return
        self._process(data)
        if (self._coalescing is None and len(data) < _COALESCE_MAX_READ and self.session.publishing
                and not self._stopped and self.server.read_coalesce > 0):
            self._coalescing = self.loop.call_later(self.server.read_coalesce, self._end_coalescing)
            self._update_reading()

    def _end_coalescing(self) -> None:
        self._coalescing = None
        self._update_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        # Keep our side open to flush (plain TCP); asyncio's SSL transport
        # ignores a True here and warns, so answer False there.
        return self.transport is None or self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)
        if self._admitted is not None and self.server.admission is not None:
            self.server.admission.leave(self._admitted)
            self._admitted = None
        self._cancel_timers()
        if exc is not None:
            self._fail(exc)
        else:
            self._eof = True
        if self._write_resumed is not None and not self._write_resumed.done():
            self._write_resumed.set_result(None)
        self._wake()

    def pause_writing(self) -> None:
        # The client stopped reading our answers: read no more from it either
        # (like awaiting drain after each read), and time it out.
        self._write_paused_at = self.loop.time()
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused_at = None
        if self._write_resumed is not None and not self._write_resumed.done():
            self._write_resumed.set_result(None)
        self._write_resumed = None
        self._last_data = self.loop.time()
        self._update_reading()

    # -- parsing --------------------------------------------------------------

    def _process(self, data: bytes | bytearray) -> None:
        """Feed the session and act on its step; hand awaiting events to the task."""
        session = self.session
        was_done = session.handshake_done
        try:
            step = session.receive(data)
            if not was_done and session.handshake_done:
                logger.debug("rtmp %s: %s handshake done", self.peer,
                             "digest" if session.digest_handshake else "simple")
                progress = self.progress
                due = self._last_data + self.server.idle_timeout
                if progress is not None and progress.accepted_at is None:
                    due = min(due, progress.started + self.server.limits.accept_timeout)
                self._reschedule(due)
            if step.data:
                self._write(step.data)
            events = step.events
            sink = self.sink
            for i, event in enumerate(events):
                kind = type(event)
                if kind is UnitReceived:
                    if sink is not None:
                        sink.on_unit(event.unit)  # type: ignore[union-attr]
                elif kind is MetadataReceived:
                    if sink is not None:
                        sink.on_metadata(event.metadata)  # type: ignore[union-attr]
                elif kind is Connected:
                    logger.debug("rtmp %s: connect app=%r", self.peer, event.app)  # type: ignore[union-attr]
                else:
                    self._backlog.extend(events[i:])
                    self._busy = True
                    self._update_reading()
                    self._wake()
                    return
        except Exception as exc:  # protocol errors and sink bugs alike end this connection in run()
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._stopped = True
        self._update_reading()
        self._wake()

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        pause = (self._busy or self._stopped or self._coalescing is not None
                 or self._write_paused_at is not None)
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    # -- timeouts -------------------------------------------------------------

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._coalescing):
            if timer is not None:
                timer.cancel()
        self._timer = self._coalescing = None

    def _reschedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._check_timeouts)

    def _check_timeouts(self) -> None:
        """One timer per connection, rescheduled to the next possible expiry when it fires."""
        self._timer = None
        if self._stopped or self._lost.done() or self.progress is None:
            return
        verdict = next_check(self.progress, self.loop.time(), bytes_in=self.session.bytes_in,
                             idle_timeout=self.server.idle_timeout, busy=self._busy,
                             write_paused_at=self._write_paused_at, handshake_done=self.session.handshake_done,
                             handshake_deadline=self._handshake_deadline, last_data=self._last_data)
        if isinstance(verdict, Stalled):
            self._fail(RtmpProtocolError(verdict.reason, verdict.code))
        elif isinstance(verdict, Silent):
            self._fail(TimeoutError())
        else:
            self._timer = self.loop.call_at(verdict, self._check_timeouts)

    # -- the connection's task ----------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

