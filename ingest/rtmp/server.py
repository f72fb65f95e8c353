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
import logging
import ssl

from ingest.rtmp.chunk import DEFAULT_MAX_MESSAGE_SIZE
from ingest.rtmp.connection import ConnectionCallbacks
from ingest.rtmp.connection_task import Connection
from ingest.rtmp.limits import Admission, RtmpLimits
from ingest.source import IngestHub

logger = logging.getLogger("onair.rtmp")

#: While publishing, after each read we stop reading for this long so the
#: kernel gathers what the publisher sends meanwhile into one read.  Encoders
#: write a chunk at a time (a hundred and more small reads a second), and on
#: these machines each wakeup of the process costs far more than parsing its
#: bytes: CPU per media second falls almost in proportion to wakeups.  Adds at
#: most this much to the ingest latency: 0.25 s against 2 s segments; a node
#: tuned for low latency lowers it (``read_coalesce``; 0 turns it off).
DEFAULT_READ_COALESCE = 0.25


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
            lambda: Connection(self), self.host, self._requested_port, ssl=self.ssl_context,
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

    def _adopt(self, connection: ConnectionCallbacks) -> bool:
        """Give a new connection its task (owned here so close() can cancel and await it)."""
        if self._closed:
            return False
        task = asyncio.create_task(connection.run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True
