"""One RTMP connection, the half that awaits: the connection's task (owned by the server) asks the hub
for a publish, closes the sink exactly once with the reason the publish ended, logs and counts a
refusal, and closes the socket (flushing the last status first).  The callbacks half is
:mod:`ingest.rtmp.connection`."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from ingest.rtmp.connection import ConnectionCallbacks, logger
from ingest.rtmp.errors import RtmpProtocolError
from ingest.rtmp.events import (
    Connected,
    Event,
    MetadataReceived,
    PublishRequested,
    Refused,
    UnitReceived,
    Unpublished,
)
from ingest.source import PublishRefused, redact

#: Seconds a closing connection may take to flush before it is aborted.
_CLOSE_GRACE = 2.0


class Connection(ConnectionCallbacks):
    """One client, with its task (:meth:`run`)."""

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

