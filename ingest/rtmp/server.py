"""The asyncio RTMP server: sockets in, :class:`RtmpSession` in the middle,
the :class:`~ingest.source.IngestHub` out.

Each connection is a task this server owns (kept in a set, cancelled and
awaited by :meth:`RtmpServer.close`).  A protocol error ends only its own
connection: it is logged once with the peer and reason, counted through
``hub.record_refusal("rtmp", code)``, and the server keeps serving others.
The sink of an accepted publish is closed exactly once, with the reason the
publish ended ("deleteStream", "network", "unsupported codec …", "shutdown").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from ingest.rtmp.chunk import DEFAULT_MAX_MESSAGE_SIZE
from ingest.rtmp.errors import RtmpProtocolError
from ingest.rtmp.session import (
    Connected,
    MetadataReceived,
    PublishRequested,
    Refused,
    RtmpSession,
    UnitReceived,
    Unpublished,
)
from ingest.source import IngestHub, PublishRefused, PublishSink, redact

logger = logging.getLogger("onair.rtmp")

_READ_SIZE = 64 * 1024
#: Seconds a closing connection may take to flush before it is aborted.
_CLOSE_GRACE = 2.0


class _Connection:
    """One client: its session, its sink (while publishing) and its socket."""

    def __init__(self, server: RtmpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
        self.session = RtmpSession(app_name=server.app_name, max_message_size=server.max_message_size)
        self.sink: PublishSink | None = None
        self.key: str | None = None
        self.closing = False

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
        await self._close_sink(reason)
        self.writer.close()
        try:
            # A client that stopped reading would keep a graceful close waiting forever.
            async with asyncio.timeout(_CLOSE_GRACE):
                await self.writer.wait_closed()
        except TimeoutError:
            self.writer.transport.abort()
        except Exception:  # the peer is gone either way
            pass

    async def _drain(self) -> None:
        try:
            async with asyncio.timeout(self.server.idle_timeout):
                await self.writer.drain()
        except TimeoutError:
            raise RtmpProtocolError(
                f"client has not read for {self.server.idle_timeout:g} s", "write_timeout") from None

    async def _close_sink(self, reason: str) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            logger.info("rtmp %s: publish of %s ended: %s", self.peer, redact(self.key or ""), reason)
            await sink.close(reason)

    async def _read(self, loop: asyncio.AbstractEventLoop, deadline: float) -> bytes:
        if self.session.handshake_done:
            timeout = self.server.idle_timeout
        else:
            timeout = max(0.0, deadline - loop.time())
        # asyncio.timeout rather than wait_for: no inner task to leak on cancel.
        async with asyncio.timeout(timeout):
            return await self.reader.read(_READ_SIZE)

    async def _loop(self) -> str:
        """Serve until the client goes; return why the publish (if any) ended."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.server.handshake_timeout
        while not self.closing:
            data = await self._read(loop, deadline)
            if not data:
                self.session.eof()
                return "network"
            was_done = self.session.handshake_done
            step = self.session.receive(data)
            if not was_done and self.session.handshake_done:
                logger.debug("rtmp %s: %s handshake done", self.peer,
                             "digest" if self.session.digest_handshake else "simple")
            if step.data:
                self.writer.write(step.data)
            for event in step.events:
                await self._on_event(event)
                if self.closing:
                    break
            await self._drain()
        # We decided to close: let the last status reach the client first.
        await self._drain()
        if self.writer.can_write_eof():
            with contextlib.suppress(OSError):
                self.writer.write_eof()
        return "closed"

    async def _on_event(self, event: object) -> None:
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
            sink = await self.server.hub.open_publish(key, protocol="rtmp", remote=self.peer)
        except PublishRefused as exc:
            logger.warning("rtmp %s: publish of %s refused (%s): %s", self.peer, redact(key), exc.code, exc.description)
            self.writer.write(self.session.refuse_publish(exc.code, exc.description))
            self.closing = True
            return
        except Exception:
            logger.exception("rtmp %s: hub failed to open publish of %s", self.peer, redact(key))
            self.server.hub.record_refusal("rtmp", "internal_error")
            self.writer.write(self.session.refuse_publish("internal_error", "the server could not open the publish"))
            self.closing = True
            return
        self.sink, self.key = sink, key
        logger.info("rtmp %s: publish of %s accepted", self.peer, redact(key))
        self.writer.write(self.session.accept_publish())


class RtmpServer:
    """An RTMP (or, with ``ssl_context``, RTMPS) ingest listener."""

    def __init__(self, hub: IngestHub, *, host: str = "127.0.0.1", port: int = 1935, app_name: str = "live",
                 ssl_context: ssl.SSLContext | None = None, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 handshake_timeout: float = 10.0, idle_timeout: float = 30.0) -> None:
        self.hub = hub
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
        self._server = await asyncio.start_server(
            self._accept, self.host, self._requested_port, ssl=self.ssl_context,
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

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # asyncio would run a coroutine callback in a task nobody owns: we make
        # the task ourselves so close() can cancel and await it.
        if self._closed:
            writer.close()
            return
        task = asyncio.create_task(_Connection(self, reader, writer).run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
