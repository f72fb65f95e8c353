"""Prometheus metrics of the chat relay, registered in the node's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Summary


class ChatMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.viewers = Gauge("onair_chat_viewers", "Chat sockets connected to this node", registry=registry)
        self.comments = Counter("onair_chat_comments", "Comments received, by outcome: a moderation action, or banned", ["action"],
                                registry=registry)
        self.batches = Counter("onair_chat_batches", "Fan-out batches written (one per room per tick)", registry=registry)
        self.slow_dropped = Counter("onair_chat_slow_consumers_dropped",
                                    "Viewers closed (4000) because their send buffer passed the bound", registry=registry)
        self.rate_limited = Counter("onair_chat_rate_limited", "Client messages refused by a rate limit", registry=registry)
        self.protocol_errors = Counter("onair_chat_protocol_errors", "Malformed client messages", ["code"], registry=registry)
        self.backfilled = Counter("onair_chat_backfilled", "Comments recovered from history after a bus gap", registry=registry)
        self.max_buffer = Gauge("onair_chat_max_send_buffer_bytes",
                                "Largest server-side send buffer of any chat socket since start", registry=registry)
        self.flush_seconds = Summary("onair_chat_flush_seconds", "Wall time of one fan-out tick (all rooms, all slices)",
                                     registry=registry)
        self.post_seconds = Summary("onair_chat_post_seconds",
                                    "From a comment's arrival to its publication on the bus (ban check, moderation, seq)",
                                    registry=registry)
        self.bus_lag_seconds = Summary("onair_chat_bus_lag_seconds",
                                       "From a comment's server timestamp to its arrival from the bus on this node",
                                       registry=registry)
        self._max = 0

    def note_buffer(self, size: int) -> None:
        if size > self._max:
            self._max = size
            self.max_buffer.set(size)

    @property
    def max_buffer_seen(self) -> int:
        return self._max
