"""One target's connection: connect, publish, send the broadcast's units, retry (one asyncio task).

The ingest calls :meth:`Forwarder.feed` for every unit; it only pushes into the
target's :class:`~broadcaster.simulcast.queue.ForwardQueue` (bounded, never
waits), so a slow, refusing or dying destination costs the ingest, the HLS
output and the other targets nothing.  The task does the I/O: TCP (or TLS with
certificate verification), the pure :class:`~ingest.rtmp.client.RtmpClientSession`,
a reader (acks, pings, the destination going away) and the sender.

Failures::

    network (refused, reset, closed, timed out, stalled)  → retrying, backoff 1, 2, 4 … retry_max s (± jitter)
    the destination said no (connect/publish rejected,     → failed, tried again every retry_max s
    certificate not trusted)

Stopping (the broadcast ends, the target is disabled or deleted) sends
FCUnpublish + deleteStream and closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from broadcaster.simulcast.queue import DEFAULT_MAX_BYTES, DEFAULT_MAX_LAG_MS, ForwardQueue
from broadcaster.simulcast.targets import Target, TargetStatus, scrub
from ingest.media import MediaKind, MediaUnit
from ingest.rtmp.client import Rejected, RtmpClientSession, StreamClosed
from ingest.rtmp.errors import RtmpProtocolError

log = logging.getLogger("onair.simulcast")

#: the transport's write buffer above which the sender waits (the queue absorbs the rest)
WRITE_HIGH_WATER = 512 * 1024


class DestinationError(Exception):
    """The connection failed or dropped: try again after a backoff."""


class DestinationRefused(Exception):
    """The destination refused us (RTMP rejection, untrusted certificate): a person has to act."""


@dataclass(frozen=True)
class ForwarderOptions:
    connect_timeout: float = 10.0
    #: a write that cannot complete for this long means the destination is gone
    stall_timeout: float = 20.0
    retry_initial: float = 1.0
    retry_max: float = 30.0
    max_lag_ms: int = DEFAULT_MAX_LAG_MS
    max_bytes: int = DEFAULT_MAX_BYTES
    #: PEM file of a CA to trust besides the system's (self-hosted RTMPS destinations)
    ca_file: str = ""

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # verifies chain and host name
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return context


def backoff(attempt: int, options: ForwarderOptions, rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry ``attempt`` (0-based): exponential, capped, with ±25 % jitter."""
    base = min(options.retry_max, options.retry_initial * (2 ** min(attempt, 30)))
    return float(base * (0.75 + 0.5 * rand()))


@dataclass(frozen=True)
class StatusChange:
    """A target changed status (what webhooks subscribe to: ``simulcast.failed`` is ``status == FAILED``)."""

    broadcast_id: str
    target_id: str
    name: str
    status: TargetStatus
    previous: TargetStatus
    #: the error that caused it (scrubbed of the stream key), if any
    error: str | None


class Forwarder:
    def __init__(self, target: Target, options: ForwarderOptions,
                 on_status: Callable[[StatusChange], None] = lambda change: None,
                 recent: Callable[[], list[MediaUnit]] = list) -> None:
        self.target = target
        self._recent = recent  # the broadcast's units since its last keyframe: where a connection starts
        self._options = options
        self._on_status = on_status
        self.queue = ForwardQueue(max_lag_ms=options.max_lag_ms, max_bytes=options.max_bytes)
        self.status = TargetStatus.IDLE
        self.last_error: str | None = None
        self.bytes_sent = 0
        self.connects = 0
        self.retries = 0
        self.live_since: float | None = None
        self._wake = asyncio.Event()
        self._error: BaseException | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # -- the ingest side (never waits) -----------------------------------

    def feed(self, unit: MediaUnit) -> None:
        if self.queue.push(unit):
            self._wake.set()

    def discontinuity(self) -> None:
        self.queue.discontinuity()

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"simulcast-{self.target.id}")

    async def stop(self, timeout: float = 5.0) -> None:
        """End cleanly (deleteStream, close); idempotent."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None and self.status is not TargetStatus.LIVE:
            task.cancel()  # connecting or waiting to retry: nothing to end cleanly
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except asyncio.TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
        self._set_status(TargetStatus.IDLE, None)

    def snapshot(self) -> dict[str, object]:
        return {"status": self.status.value, "bytes_sent": self.bytes_sent, "last_error": self.last_error,
                "connects": self.connects, "retries": self.retries, "queue_drops": self.queue.drops,
                "dropped_units": self.queue.dropped_units,
                "live_for": round(time.monotonic() - self.live_since, 1) if self.live_since else None}

    # -- the task ------------------------------------------------------------

    def _set_status(self, status: TargetStatus, error: str | None) -> None:
        if error is not None:
            self.last_error = error
        if status is self.status:
            return
        previous, self.status = self.status, status
        self.live_since = time.monotonic() if status is TargetStatus.LIVE else None
        t = self.target
        change = StatusChange(t.broadcast_id, t.id, t.name, status, previous, error)
        if error is not None:
            log.warning("simulcast %s of %s (%s): %s → %s: %s", t.id, t.broadcast_id, t.name, previous.value,
                        status.value, error)
        else:
            log.info("simulcast %s of %s (%s): %s → %s", t.id, t.broadcast_id, t.name, previous.value, status.value)
        try:
            self._on_status(change)
        except Exception:  # a listener's bug must not stop the forwarding
            log.exception("simulcast status listener failed")

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            self._set_status(TargetStatus.CONNECTING, None)
            self.connects += 1
            refused = False
            try:
                await self._connection()
                return  # stopped cleanly
            except DestinationRefused as exc:
                error, refused = str(exc), True
            except asyncio.TimeoutError:
                error = "timed out"
            except ssl.SSLCertVerificationError as exc:
                error, refused = f"TLS certificate not trusted: {exc.verify_message}", True
            except (OSError, DestinationError, RtmpProtocolError, ssl.SSLError, EOFError) as exc:
                error = _describe(exc)
            finally:
                self.queue.stop()
            if self._stopping:
                return
            error = scrub(error, self.target.stream_key)
            if self.live_since is not None or self.status is TargetStatus.LIVE:
                attempt = 0  # it worked before it failed: start the backoff again
            delay = self._options.retry_max if refused else backoff(attempt, self._options)
            attempt += 1
            self.retries += 1
            self._set_status(TargetStatus.FAILED if refused else TargetStatus.RETRYING, error)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopped(), delay)

    async def _stopped(self) -> None:
        while not self._stopping:
            self._wake.clear()
            await self._wake.wait()

    async def _connection(self) -> None:
        destination = self.target.destination
        context = self._options.ssl_context() if destination.tls else None
        timeout = self._options.connect_timeout
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            destination.host, destination.port, ssl=context,
            server_hostname=destination.host if context is not None else None), timeout)
        writer.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        session = RtmpClientSession(destination.app, destination.tc_url, self.target.stream_key)
        reading: asyncio.Task[None] | None = None
        try:
            writer.write(session.start())
            await asyncio.wait_for(self._publish(reader, writer, session), timeout)
            self._error = None
            self.queue.start()
            for unit in self._recent():  # from the latest keyframe, at once
                self.queue.push(unit)
            self._wake.set()
            self._set_status(TargetStatus.LIVE, None)
            metadata: dict[str, object] = {"videocodecid": 7.0, "encoder": "onair"}
            if MediaKind.AUDIO in self.queue.configs:
                metadata["audiocodecid"] = 10.0
            writer.write(session.metadata(metadata))
            reading = asyncio.create_task(self._read(reader, writer, session), name=f"simulcast-read-{self.target.id}")
            await self._send(writer, session)
            writer.write(session.finish())  # FCUnpublish + deleteStream
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.drain(), 2.0)
        finally:
            if reading is not None:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reading
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), 2.0)

    async def _publish(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       session: RtmpClientSession) -> None:
        """Handshake, connect, createStream, publish: until NetStream.Publish.Start."""
        while not session.publishing:
            data = await reader.read(65536)
            if not data:
                raise DestinationError(f"the destination closed the connection during {session.state.value}")
            step = session.receive(data)
            writer.write(step.data)
            for event in step.events:
                if isinstance(event, Rejected):
                    raise DestinationRefused(f"{event.code}: {event.description}")
            if self._stopping:
                raise DestinationError("stopped")

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    session: RtmpClientSession) -> None:
        """What the destination sends while we publish: acks to send, or the end."""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise DestinationError("the destination closed the connection")
                step = session.receive(data)
                if step.data:
                    writer.write(step.data)
                for event in step.events:
                    if isinstance(event, Rejected):
                        raise DestinationRefused(f"{event.code}: {event.description}")
                    if isinstance(event, StreamClosed):
                        raise DestinationError(f"the destination ended the stream ({event.code})")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._error = exc
            self._wake.set()

    async def _send(self, writer: asyncio.StreamWriter, session: RtmpClientSession) -> None:
        queue = self.queue
        stall = self._options.stall_timeout
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._error is not None:
                raise self._error
            if self._stopping:
                return
            out = bytearray()
            while (item := queue.pop()) is not None:
                out += session.send_unit(item[0], item[1])
            if out:
                writer.write(out)
                self.bytes_sent += len(out)
                if writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                    try:
                        await asyncio.wait_for(writer.drain(), stall)
                    except asyncio.TimeoutError:
                        raise DestinationError(f"the destination read nothing for {stall:.0f} s") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.strerror:
        return exc.strerror.lower()  # "connection reset by peer", "no route to host" ...
    return str(exc) or type(exc).__name__
