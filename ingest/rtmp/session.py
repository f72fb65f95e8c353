"""One RTMP publisher connection as an I/O-free state machine.

``RtmpSession.receive(data)`` takes what the socket read and returns a
:class:`Step`: the bytes to write back and the events the server must act on,
in order.  The one decision the session cannot take alone — whether the node
accepts a stream key — is an event (:class:`PublishRequested`); the server asks
the hub and calls :meth:`RtmpSession.accept_publish` or
:meth:`RtmpSession.refuse_publish`.

States::

    HANDSHAKE → CONNECTING --connect--> CONNECTED --publish--> PUBLISH_PENDING
        → PUBLISHING --deleteStream/FCUnpublish--> CONNECTED ...
    any --refusal--> CLOSED  (the server flushes the answer and closes)
"""

from __future__ import annotations

import enum

from ingest.flv import UnsupportedCodec, parse_audio_body, parse_video_body
from ingest.rtmp import messages as msg
from ingest.rtmp.amf0 import EcmaArray
from ingest.rtmp.chunk import DEFAULT_MAX_MESSAGE_SIZE, ChunkDecoder, RtmpMessage
from ingest.rtmp.control import CONTROL_TYPES
from ingest.rtmp.errors import CommandError, HandshakeError, RtmpProtocolError
from ingest.rtmp.events import (
    Connected,
    Event,
    MetadataReceived,
    PublishRequested,
    Refused,
    Step,
    UnitReceived,
    Unpublished,
)
from ingest.rtmp.handshake import ServerHandshake
from ingest.rtmp.outbox import Outbox

#: Our outgoing chunk size (fewer chunk headers than the default 128).
OUT_CHUNK_SIZE = 4096
WINDOW_ACK_SIZE = 2_500_000
#: Commands a client may send before its publish is accepted (encoders send five or six:
#: connect, releaseStream, FCPublish, createStream, publish, maybe _checkbw).
MAX_PRE_ACCEPT_COMMANDS = 32
#: The message stream id createStream hands out.
PUBLISH_STREAM_ID = 1


class SessionState(enum.Enum):
    HANDSHAKE = "handshake"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    PUBLISH_PENDING = "publish_pending"
    PUBLISHING = "publishing"
    CLOSED = "closed"


#: States in which media belongs to the publish.  Units that arrive while the
#: hub decides (PUBLISH_PENDING) follow the PublishRequested event in order, so
#: the server delivers them once the publish is accepted and drops them if not.
_ACCEPTING = frozenset({SessionState.PUBLISH_PENDING, SessionState.PUBLISHING})


#: Hub refusal code → RTMP onStatus code (anything else: NetStream.Publish.Rejected).
_REFUSAL_STATUS = {
    "bad_key": "NetStream.Publish.BadName",
    "already_live": "NetStream.Publish.BadName",
}


def publish_refusal_status(code: str) -> str:
    """The onStatus code we answer a hub refusal ``code`` with."""
    return _REFUSAL_STATUS.get(code, "NetStream.Publish.Rejected")


def normalize_app(app: str) -> str:
    """The app name without a query string or slashes around it."""
    return app.split("?", 1)[0].strip("/")


def stream_key_from_publish_name(name: str) -> str:
    """The stream key in a publish name: anything after '?' is a query."""
    return name.split("?", 1)[0]


class RtmpSession:
    """Server side of one RTMP connection, free of I/O."""

    def __init__(self, *, app_name: str = "live", max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 pre_accept_message_size: int | None = None,
                 out_chunk_size: int = OUT_CHUNK_SIZE, window_ack_size: int = WINDOW_ACK_SIZE) -> None:
        self.app_name = app_name
        self.state = SessionState.HANDSHAKE
        self.app: str | None = None
        self.stream_key: str | None = None
        #: True once a publish was accepted (the key checked)
        self.accepted = False
        self._max_message_size = max_message_size
        self._pre_accept_commands = 0
        self._handshake = ServerHandshake()
        self._decoder = ChunkDecoder(max_message_size=max_message_size)
        if pre_accept_message_size is not None and pre_accept_message_size < max_message_size:
            # Before the key check a client holds at most this much of the node's memory
            # (ingest/rtmp/limits.py): one partial message of this size, and its incomplete chunk.
            self._decoder.set_limits(pre_accept_message_size, pre_accept_message_size,
                                     " before the publish is accepted")
            # one command at a time, so the publish raises the bound before what follows it is read
            self._decoder.stop_after_commands = True
        self._out_chunk_size = out_chunk_size
        self._window_ack_size = window_ack_size
        self._publish_stream_id = PUBLISH_STREAM_ID
        self._bytes_in = 0
        # what to write back (acks per the client's Window Ack Size, ping responses included) and the events
        self._out: Outbox[Event] = Outbox()

    # -- public API --------------------------------------------------------

    @property
    def handshake_done(self) -> bool:
        return self.state is not SessionState.HANDSHAKE

    @property
    def digest_handshake(self) -> bool:
        """True if the client used the FP9 digest handshake (libavformat does)."""
        return self._handshake.digest

    @property
    def bytes_in(self) -> int:
        """Bytes received from the client so far (handshake included)."""
        return self._bytes_in

    @property
    def held_bytes(self) -> int:
        """Bytes of the client's held between reads (handshake and chunk stream)."""
        return self._handshake.held_bytes + self._decoder.held_bytes

    @property
    def publishing(self) -> bool:
        return self.state is SessionState.PUBLISHING

    def receive(self, data: bytes | bytearray) -> Step:
        """Feed bytes from the client.  Raises :class:`RtmpProtocolError`."""
        if self.state is SessionState.CLOSED:
            return Step()  # answered a refusal; ignore what is still in flight
        self._bytes_in += len(data)
        if self.state is SessionState.HANDSHAKE:
            self._out.write(self._handshake.feed(data))
            if not self._handshake.done:
                return self._out.take()
            self.state = SessionState.CONNECTING
            data = self._handshake.take_rest()
        decoder = self._decoder
        messages = decoder.feed(data)
        while True:
            for message in messages:
                if self.state is SessionState.CLOSED:
                    break
                self._handle(message)
            if not decoder.stopped or self.state is SessionState.CLOSED:
                break
            messages = decoder.feed(b"")  # the rest of this read, under the limits now in force
        self._out.ack(decoder.bytes_received)
        return self._out.take()

    def eof(self) -> None:
        """The client closed its side; raise if it stopped mid-handshake or mid-chunk.

        A connection closed before sending anything (a port probe) is not an error.
        """
        if self.state is SessionState.HANDSHAKE:
            if self._bytes_in:
                raise HandshakeError("connection closed during the handshake", "truncated")
            return
        if self.state is not SessionState.CLOSED and not self._decoder.idle:
            raise RtmpProtocolError("connection closed in the middle of a chunk", "truncated")

    def accept_publish(self) -> bytes:
        """The hub took the publish: answer NetStream.Publish.Start."""
        if self.state is not SessionState.PUBLISH_PENDING:
            raise RuntimeError(f"accept_publish() in state {self.state.value}")
        self.state = SessionState.PUBLISHING
        self.accepted = True
        self._out.send(msg.stream_begin(self._publish_stream_id))
        self._out.send(msg.on_status(self._publish_stream_id, "status", "NetStream.Publish.Start",
                                 f"{self.stream_key} is now published.", details=self.stream_key))
        return self._out.take().data

    def refuse_publish(self, code: str, description: str) -> bytes:
        """The hub refused: answer an error onStatus; the session is closed."""
        self._out.send(msg.on_status(self._publish_stream_id, "error", publish_refusal_status(code), description))
        self.state = SessionState.CLOSED
        return self._out.take().data

    # -- internals ---------------------------------------------------------

    def _refuse(self, code: str, description: str) -> None:
        self._out.emit(Refused(code, description))
        self.state = SessionState.CLOSED

    def _handle(self, message: RtmpMessage) -> None:
        t = message.type_id
        if t == msg.VIDEO or t == msg.AUDIO:  # nearly every message: test it first
            self._media(t, message.timestamp, message.payload)
            return
        if t in (msg.SET_CHUNK_SIZE, msg.ABORT, msg.ACKNOWLEDGEMENT, msg.SET_PEER_BANDWIDTH):
            return  # chunk layer already applied them; acks and peer bandwidth need nothing
        if t in CONTROL_TYPES:
            self._out.answer_control(message)
        elif t in (msg.COMMAND_AMF0, msg.COMMAND_AMF3):
            self._command(msg.parse_command(message), message)
        elif t in (msg.DATA_AMF0, msg.DATA_AMF3):
            self._data(message)
        elif t == msg.AGGREGATE:
            self._aggregate(message)
        # Shared objects and unknown types are ignored, as other servers do.

    def _command(self, cmd: msg.Command, message: RtmpMessage) -> None:
        name = cmd.name
        if not self.accepted:
            self._pre_accept_commands += 1
            if self._pre_accept_commands > MAX_PRE_ACCEPT_COMMANDS:
                raise CommandError(f"more than {MAX_PRE_ACCEPT_COMMANDS} commands before an accepted publish",
                                   "too_many_commands")
        if name == "connect":
            self._connect(cmd)
            return
        if self.state is SessionState.CONNECTING:
            raise CommandError(f"command {name!r} before connect", "bad_command")
        if name == "createStream":
            self._out.send(msg.result(cmd.transaction_id, None, float(self._publish_stream_id)))
        elif name in ("releaseStream", "FCPublish"):
            self._out.send(msg.result(cmd.transaction_id, None))
        elif name == "publish":
            self._publish(cmd, message.stream_id)
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            if self.state is SessionState.PUBLISHING:
                self.state = SessionState.CONNECTED
                self._out.emit(Unpublished("deleteStream"))
        elif name == "play":
            stream = cmd.args[0] if cmd.args and isinstance(cmd.args[0], str) else ""
            self._out.send(msg.on_status(message.stream_id or self._publish_stream_id, "error",
                                     "NetStream.Play.Failed", "onair does not serve RTMP playback; watch over HLS"))
            self._refuse("play", f"play of {stream[:4]}… refused: RTMP playback is not served")
        # Anything else (_checkbw, getStreamLength ...) is ignored, like nginx-rtmp does.

    def _connect(self, cmd: msg.Command) -> None:
        if self.state is not SessionState.CONNECTING:
            raise CommandError("connect sent twice", "bad_command")
        obj = cmd.command_object if isinstance(cmd.command_object, dict) else {}
        app = obj.get("app")
        tc_url = obj.get("tcUrl")
        self.app = normalize_app(app) if isinstance(app, str) else ""
        encoding = obj.get("objectEncoding", 0.0)
        self.state = SessionState.CONNECTED
        self._out.emit(Connected(self.app, tc_url if isinstance(tc_url, str) else None))
        if self.app != self.app_name:
            self._out.send(msg.error(cmd.transaction_id, None, msg.status_info(
                "error", "NetConnection.Connect.Rejected", f"unknown application {self.app!r}")))
            self._refuse("bad_app", f"unknown application {self.app!r}")
            return
        self._out.send(msg.window_ack_size(self._window_ack_size))
        self._out.send(msg.set_peer_bandwidth(self._window_ack_size, msg.LIMIT_DYNAMIC))
        self._out.send(msg.set_chunk_size(self._out_chunk_size))
        self._out.encoder.set_chunk_size(self._out_chunk_size)
        self._out.send(msg.stream_begin(0))
        self._out.send(msg.connect_result(cmd.transaction_id, float(encoding) if isinstance(encoding, float) else 0.0))
        self._out.send(msg.on_bw_done())

    def _publish(self, cmd: msg.Command, stream_id: int) -> None:
        if self.state is not SessionState.CONNECTED:
            raise CommandError(f"publish in state {self.state.value}", "bad_command")
        name = cmd.args[0] if cmd.args and isinstance(cmd.args[0], str) else ""
        key = stream_key_from_publish_name(name)
        self._publish_stream_id = stream_id or PUBLISH_STREAM_ID
        if not key:
            self._out.send(msg.on_status(self._publish_stream_id, "error", "NetStream.Publish.BadName",
                                     "publish without a stream name"))
            self._refuse("bad_key", "publish without a stream name")
            return
        self.stream_key = key
        self.state = SessionState.PUBLISH_PENDING
        if not self.accepted:
            # Media may follow the publish in the same read (a client that does not wait for
            # the answer): the full size applies from here.  The server reads nothing more
            # until the hub decides, so a refused client has held at most that one read.
            self._decoder.set_limits(self._max_message_size)
            self._decoder.stop_after_commands = False
        self._out.emit(PublishRequested(key, self._publish_stream_id))

    def _data(self, message: RtmpMessage) -> None:
        values = msg.decode_amf_body(message)
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            if self.state in _ACCEPTING:
                metadata = dict(values[1]) if isinstance(values[1], EcmaArray) else values[1]
                self._out.emit(MetadataReceived(metadata))

    def _media(self, type_id: int, timestamp: int, body: bytes) -> None:
        if self.state not in _ACCEPTING:
            return  # media before publish (or after unpublish) has no sink
        if not body:
            return  # empty audio/video messages are keep-alives some encoders send
        try:
            unit = parse_video_body(timestamp, body) if type_id == msg.VIDEO else parse_audio_body(timestamp, body)
        except UnsupportedCodec as exc:
            self._out.send(msg.on_status(self._publish_stream_id, "error", "NetStream.Publish.Rejected", str(exc)))
            self._refuse("unsupported_codec", str(exc))
            return
        except ValueError as exc:
            kind = "video" if type_id == msg.VIDEO else "audio"
            raise RtmpProtocolError(f"malformed {kind} message: {exc}", "bad_media") from None
        if unit is not None:
            self._out.emit(UnitReceived(unit))

    def _aggregate(self, message: RtmpMessage) -> None:
        """An aggregate message: FLV tags whose timestamps are relative to the first."""
        body = message.payload
        pos = 0
        base: int | None = None
        while pos < len(body) and self.state in _ACCEPTING:
            if len(body) - pos < 11:
                raise RtmpProtocolError("aggregate message has a truncated tag header", "bad_media")
            tag_type = body[pos]
            size = int.from_bytes(body[pos + 1:pos + 4], "big")
            ts = int.from_bytes(body[pos + 4:pos + 7], "big") | (body[pos + 7] << 24)
            end = pos + 11 + size
            if end + 4 > len(body):
                raise RtmpProtocolError("aggregate message has a truncated tag", "bad_media")
            if base is None:
                base = ts
            if tag_type in (msg.AUDIO, msg.VIDEO):
                self._media(tag_type, (message.timestamp + ts - base) & 0xFFFFFFFF, body[pos + 11:end])
            pos = end + 4  # skip the back pointer
