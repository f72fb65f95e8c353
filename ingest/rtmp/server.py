"""The asyncio RTMP server: sockets in, :class:`RtmpSession` in the middle,
the :class:`~ingest.source.IngestHub` out.

Each connection is an :class:`asyncio.Protocol` whose ``data_received`` feeds
the pure session directly: a publisher sends a hundred or more small socket
reads a second, and a coroutine + timeout per read cost more CPU than parsing
them.  Media events (units, metadata) are handed to the sink right there.  The
few events that must await (a publish asking the hub, a sink closing, a
refusal) pause reading and go, in order, to the connection's task, which this
server owns (kept in a set, cancelled and awaited by :meth:`RtmpServer.close`);
bytes that still arrive meanwhile are held and parsed after them, so ordering
is the same as reading one buffer at a time.

Timeouts (no handshake within ``handshake_timeout``, no data for
``idle_timeout``, a client not reading our answers for ``idle_timeout``) and
the progress a connection owes (:mod:`ingest.rtmp.limits`: an accepted publish
within ``accept_timeout``, then a minimum data rate) are checked by one timer
per connection that is rescheduled only when it fires, not per read.  Before
its publish is requested a connection may hold a message of a few KiB at most
(the session bounds it).  A connection past the node's per-node or
per-address cap (``admission``) is closed as soon as it is accepted.

A protocol error ends only its own connection: it is logged once with the peer
and reason, counted through ``hub.record_refusal("rtmp", code)``, and the
server keeps serving others.  The sink of an accepted publish is closed exactly
once, with the reason the publish ended ("deleteStream", "network",
"unsupported codec …", "shutdown").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from typing import cast

from ingest.rtmp.chunk import DEFAULT_MAX_MESSAGE_SIZE
from ingest.rtmp.errors import RtmpProtocolError
from ingest.rtmp.limits import Admission, Progress, RtmpLimits, Silent, Stalled, next_check
from ingest.rtmp.session import (
    Connected,
    Event,
    MetadataReceived,
    PublishRequested,
    Refused,
    RtmpSession,
    UnitReceived,
    Unpublished,
)
from ingest.source import IngestHub, PublishRefused, PublishSink, redact

logger = logging.getLogger("onair.rtmp")

#: Seconds a closing connection may take to flush before it is aborted.
_CLOSE_GRACE = 2.0
#: While publishing, after each read we stop reading for this long so the
#: kernel gathers what the publisher sends meanwhile into one read.  Encoders
#: write a chunk at a time (a hundred and more small reads a second), and on
#: these machines each wakeup of the process costs far more than parsing its
#: bytes: CPU per media second falls almost in proportion to wakeups.  Adds at
#: most this much to the ingest latency: 0.25 s against 2 s segments; a node
#: tuned for low latency lowers it (``read_coalesce``; 0 turns it off).
DEFAULT_READ_COALESCE = 0.25
#: A read this large means the publisher sends faster than the kernel's receive
#: buffer holds for the pause: read again at once instead of pausing, so a
#: high bitrate is never throttled by the pause.
_COALESCE_MAX_READ = 128 * 1024


class _Connection(asyncio.Protocol):
    """One client: its session, its sink (while publishing) and its socket.

    Callbacks (``data_received`` ...) do the per-read work without awaiting;
    :meth:`run`, the connection's task, does what must await and the close.
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

    async def _wait(self) -> None:
        while self._error is None and not self._backlog and not self._eof:
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def run(self) -> None:
        end_reason = "network"
        try:
            end_reason = await self._loop()
        except RtmpProtocolError as exc:
            if exc.code == "truncated" and self.sink is not None:
                # A publisher that vanishes mid-message is a network drop, not a refusal.
                logger.info("rtmp %s: connection lost mid-message", self.peer)
            else:
                self._refusal(exc.code, str(exc))
        except TimeoutError:
            if self.session.handshake_done:
                logger.info("rtmp %s: closed after %.0f s without data", self.peer, self.server.idle_timeout)
                self.server.hub.record_refusal("rtmp", "idle_timeout")
            else:
                self._refusal("handshake_timeout", f"no handshake within {self.server.handshake_timeout:g} s")
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            logger.info("rtmp %s: connection lost: %s", self.peer, exc)
        except Exception:  # a bug must cost one connection, never the server
            logger.exception("rtmp %s: internal error", self.peer)
            self.server.hub.record_refusal("rtmp", "internal_error")
        except asyncio.CancelledError:
            end_reason = "shutdown"
            await self._finish(end_reason)
            raise
        await self._finish(end_reason)

    def _refusal(self, code: str, reason: str) -> None:
        logger.warning("rtmp %s: refused (%s): %s", self.peer, code, reason)
        self.server.hub.record_refusal("rtmp", code)

    async def _finish(self, reason: str) -> None:
        self._stopped = True
        self._cancel_timers()
        await self._close_sink(reason)
        transport = self.transport
        if transport is None:
            return
        transport.close()
        try:
            # A client that stopped reading would keep a graceful close waiting forever.
            async with asyncio.timeout(_CLOSE_GRACE):
                await asyncio.shield(self._lost)
        except TimeoutError:
            transport.abort()
        except Exception:  # the peer is gone either way
            pass

    async def _drain(self) -> None:
        """Wait until the client read what we wrote (bounded by ``idle_timeout``)."""
        if self._write_paused_at is None or self._lost.done():
            return
        if self._write_resumed is None:
            self._write_resumed = self.loop.create_future()
        try:
            async with asyncio.timeout(self.server.idle_timeout):
                await asyncio.shield(self._write_resumed)
        except TimeoutError:
            raise RtmpProtocolError(
                f"client has not read for {self.server.idle_timeout:g} s", "write_timeout") from None

    async def _close_sink(self, reason: str) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            logger.info("rtmp %s: publish of %s ended: %s", self.peer, redact(self.key or ""), reason)
            await sink.close(reason)

    async def _loop(self) -> str:
        """Serve until the client goes; return why the publish (if any) ended."""
        while True:
            await self._wait()
            if self._error is not None:
                raise self._error
            while self._backlog and not self.closing:
                await self._on_event(self._backlog.popleft())
                if self._error is not None:
                    raise self._error
            if self.closing:
                break
            if self._held:
                # Parse what arrived while we awaited, still with reading paused.
                data = bytes(self._held)
                self._held.clear()
                self._busy = False  # _process sets it again if it hands over more events
                self._process(data)
                if self._backlog or self._error is not None:
                    continue
            self._busy = False
            if self._eof:
                self.session.eof()
                return "network"
            self._last_data = self.loop.time()
            self._update_reading()
        # We decided to close: let the last status reach the client first.
        self._stopped = True
        self._backlog.clear()
        self._update_reading()
        await self._drain()
        transport = self.transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            with contextlib.suppress(OSError):
                transport.write_eof()
        return "closed"

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, UnitReceived):
            if self.sink is not None:
                self.sink.on_unit(event.unit)
        elif isinstance(event, MetadataReceived):
            if self.sink is not None:
                self.sink.on_metadata(event.metadata)
        elif isinstance(event, PublishRequested):
            await self._publish(event)
        elif isinstance(event, Unpublished):
            await self._close_sink(event.reason)
        elif isinstance(event, Refused):
            self._refusal(event.code, event.description)
            await self._close_sink(event.description)
            self.closing = True
        elif isinstance(event, Connected):
            logger.debug("rtmp %s: connect app=%r", self.peer, event.app)

    async def _publish(self, event: PublishRequested) -> None:
        key = event.stream_key
        try:
            sink = await self.server.hub.open_publish(
                key, protocol="rtmp", remote=self.peer,
                # the node ended the broadcast (API, force-end, its lease): drop the publisher
                disconnect=lambda: self._fail(ConnectionAbortedError("disconnected by the node")))
        except PublishRefused as exc:
            logger.warning("rtmp %s: publish of %s refused (%s): %s", self.peer, redact(key), exc.code, exc.description)
            self._write(self.session.refuse_publish(exc.code, exc.description))
            self.closing = True
            return
        except Exception:
            logger.exception("rtmp %s: hub failed to open publish of %s", self.peer, redact(key))
            self.server.hub.record_refusal("rtmp", "internal_error")
            self._write(self.session.refuse_publish("internal_error", "the server could not open the publish"))
            self.closing = True
            return
        self.sink, self.key = sink, key
        logger.info("rtmp %s: publish of %s accepted", self.peer, redact(key))
        self._write(self.session.accept_publish())
        if self.progress is not None and self.progress.accepted_at is None:
            now = self.loop.time()
            self.progress.accepted(now, self.session.bytes_in)
            self._reschedule(min(now + self.server.limits.rate_window, self._last_data + self.server.idle_timeout))


class RtmpServer:
    """An RTMP (or, with ``ssl_context``, RTMPS) ingest listener."""

    def __init__(self, hub: IngestHub, *, host: str = "127.0.0.1", port: int = 1935, app_name: str = "live",
                 ssl_context: ssl.SSLContext | None = None, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 handshake_timeout: float = 10.0, idle_timeout: float = 30.0,
                 read_coalesce: float = DEFAULT_READ_COALESCE, limits: RtmpLimits | None = None,
                 admission: Admission | None = None) -> None:
        self.hub = hub
        self.limits = limits or RtmpLimits()
        self.admission = admission
        self.read_coalesce = read_coalesce
        self.host = host
        self.app_name = app_name
        self.ssl_context = ssl_context
        self.max_message_size = max_message_size
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is None or not self._server.sockets:
            return self._requested_port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connection_count(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("RtmpServer already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self._requested_port, ssl=self.ssl_context,
            ssl_handshake_timeout=self.handshake_timeout if self.ssl_context else None)
        logger.info("rtmp%s listening on %s:%d", "s" if self.ssl_context else "", self.host, self.port)

    async def close(self) -> None:
        """Stop listening, end every connection and wait for them (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> RtmpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _adopt(self, connection: _Connection) -> bool:
        """Give a new connection its task (owned here so close() can cancel and await it)."""
        if self._closed:
            return False
        task = asyncio.create_task(connection.run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True
