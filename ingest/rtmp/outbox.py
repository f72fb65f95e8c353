"""What one end of an RTMP connection owes its caller after a call (pure, no I/O): the bytes to write back
(messages chunk-encoded, the protocol-control answers owed) and the events, in order, handed over
together as one :class:`Step` by :meth:`Outbox.take`.  The server session (session.py, events of
:mod:`ingest.rtmp.events`) and the publishing client (client.py, its own events) each keep one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ingest.rtmp.chunk import ChunkEncoder, RtmpMessage
from ingest.rtmp.control import Control

E = TypeVar("E")


@dataclass(slots=True)
class Step(Generic[E]):
    """The result of one call: what to send, and what happened."""

    data: bytes = b""
    events: list[E] = field(default_factory=list)


class Outbox(Generic[E]):
    """Bytes to write and events to report, gathered until :meth:`take`.

    ``encoder`` is this end's chunk encoder (its chunk size set by the owner); ``control`` answers the
    peer's Window Acknowledgement Size and pings.
    """

    __slots__ = ("encoder", "control", "_data", "_events")

    def __init__(self) -> None:
        self.encoder = ChunkEncoder()
        self.control = Control()
        self._data = bytearray()
        self._events: list[E] = []

    def write(self, data: bytes) -> None:
        """Raw bytes (the handshake's)."""
        self._data += data

    def send(self, message: RtmpMessage) -> None:
        self._data += self.encoder.encode(message)

    def emit(self, event: E) -> None:
        self._events.append(event)

    def answer_control(self, message: RtmpMessage) -> None:
        """Send what a message of :data:`ingest.rtmp.control.CONTROL_TYPES` asks for, if anything."""
        reply = self.control.answer(message)
        if reply is not None:
            self.send(reply)

    def ack(self, received: int) -> None:
        """Send the Acknowledgement owed once ``received`` bytes (all so far) have arrived, if one is."""
        ack = self.control.ack_due(received)
        if ack is not None:
            self.send(ack)

    def take(self) -> Step[E]:
        """Everything gathered since the last take; the outbox is empty after it."""
        step = Step(bytes(self._data), self._events)
        self._data = bytearray()
        self._events = []
        return step
