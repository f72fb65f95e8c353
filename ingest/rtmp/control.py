"""The protocol-control answers either end of an RTMP connection owes (pure, no I/O): an Acknowledgement
each time the peer's Window Acknowledgement Size of bytes has arrived, and a ping response to a ping
request.  The server session (session.py) and the publishing client (client.py) share it."""

from __future__ import annotations

from ingest.rtmp import messages as msg
from ingest.rtmp.chunk import RtmpMessage
from ingest.rtmp.errors import CommandError

#: the message types :meth:`Control.answer` handles
CONTROL_TYPES = frozenset({msg.WINDOW_ACK_SIZE, msg.USER_CONTROL})


class Control:
    def __init__(self) -> None:
        self.peer_window: int | None = None  # set by the peer's Window Acknowledgement Size
        self._last_ack = 0

    def answer(self, message: RtmpMessage) -> RtmpMessage | None:
        """What to send back for a message of :data:`CONTROL_TYPES` (None: nothing); CommandError if invalid."""
        if message.type_id == msg.WINDOW_ACK_SIZE:
            size = msg.parse_u32(message.payload, "window acknowledgement size")
            if size == 0:
                raise CommandError("window acknowledgement size 0 is invalid", "bad_control")
            self.peer_window = size
        elif message.type_id == msg.USER_CONTROL:
            event, data = msg.parse_user_control(message.payload)
            if event == msg.PING_REQUEST:
                return msg.user_control(msg.PING_RESPONSE, data[:4])
        return None

    def ack_due(self, received: int) -> RtmpMessage | None:
        """The Acknowledgement owed once ``received`` bytes (all so far) have arrived, if one is."""
        if self.peer_window is None or received - self._last_ack < self.peer_window:
            return None
        self._last_ack = received
        return msg.acknowledgement(received)
