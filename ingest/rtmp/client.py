"""One outgoing RTMP publish (onair forwarding to a destination) as an I/O-free state machine.

The mirror of :mod:`ingest.rtmp.session`: the caller moves bytes, the session
decides.  ``start()`` gives C0+C1; ``receive(data)`` takes what the socket read
and returns a :class:`ClientStep` (bytes to write, events); ``send_unit(unit)``
gives the bytes of one media message once the publish is accepted;
``finish()`` gives FCUnpublish + deleteStream.

States::

    HANDSHAKE → CONNECTING --_result(connect)--> CREATING --_result(createStream)-->
        PUBLISH_PENDING --onStatus Publish.Start--> PUBLISHING --finish()--> CLOSED
    any --_error / onStatus error--> CLOSED (a Rejected event says why)

The commands are what OBS and ffmpeg send (connect, releaseStream, FCPublish,
createStream, publish "live"), so a destination that takes them takes us.
Messages from the server are parsed with the server side's parsers (chunk
stream, AMF0): they are bounded the same way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ingest import flv
from ingest.media import MediaKind, MediaUnit
from ingest.rtmp import amf0
from ingest.rtmp import messages as msg
from ingest.rtmp.chunk import ChunkDecoder, RtmpMessage
from ingest.rtmp.control import CONTROL_TYPES
from ingest.rtmp.errors import CommandError
from ingest.rtmp.handshake import ClientHandshake
from ingest.rtmp.outbox import Outbox, Step

#: Our outgoing chunk size (what OBS uses): fewer chunk headers than the default 128.
OUT_CHUNK_SIZE = 4096
#: What the server's messages may weigh (commands and control only; a destination sends no media).
MAX_SERVER_MESSAGE = 1 << 20
CSID_AUDIO = 4
CSID_VIDEO = 6
CSID_DATA = 5
FLASH_VER = "FMLE/3.0 (compatible; onair)"

_TX_CONNECT = 1.0
_TX_RELEASE = 2.0
_TX_FCPUBLISH = 3.0
_TX_CREATE = 4.0


class ClientState(enum.Enum):
    HANDSHAKE = "handshake"
    CONNECTING = "connecting"
    CREATING = "creating"
    PUBLISH_PENDING = "publish_pending"
    PUBLISHING = "publishing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class PublishStarted:
    """The destination answered NetStream.Publish.Start: media may flow."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """The destination refused (connect or publish).  ``code`` is its status code
    (``NetConnection.Connect.Rejected``, ``NetStream.Publish.BadName`` ...)."""

    code: str
    description: str


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """The destination ended the publish itself (onStatus Unpublish/Publish.Idle, or deleteStream)."""

    code: str


ClientEvent = PublishStarted | Rejected | StreamClosed

#: What receive() returns: the bytes to write, and what happened.
ClientStep = Step[ClientEvent]


class RtmpClientSession:
    """Client side of one publish connection, free of I/O.

    ``app`` and ``tc_url`` come from the destination URL
    (:func:`broadcaster.simulcast.targets.parse_destination`); ``stream_name`` is
    the stream key, which this object never puts anywhere but the publish command.
    """

    def __init__(self, app: str, tc_url: str, stream_name: str, *,
                 handshake: ClientHandshake | None = None, out_chunk_size: int = OUT_CHUNK_SIZE) -> None:
        self.app = app
        self.tc_url = tc_url
        self._stream_name = stream_name
        self.state = ClientState.HANDSHAKE
        self.stream_id = 0
        self._handshake = handshake or ClientHandshake()
        self._decoder = ChunkDecoder(max_message_size=MAX_SERVER_MESSAGE)
        self._out_chunk_size = out_chunk_size
        # what to write (acks per the destination's Window Ack Size, ping responses included) and the events
        self._out: Outbox[ClientEvent] = Outbox()
        #: bytes of media messages produced (what /metrics and the API count as sent)
        self.media_bytes = 0

    # -- public API --------------------------------------------------------

    @property
    def publishing(self) -> bool:
        return self.state is ClientState.PUBLISHING

    def start(self) -> bytes:
        """C0+C1: the first bytes to send."""
        return self._handshake.start()

    def receive(self, data: bytes) -> ClientStep:
        """Feed bytes from the server.  Raises :class:`RtmpProtocolError` on garbage."""
        if self.state is ClientState.CLOSED:
            return ClientStep()
        if self.state is ClientState.HANDSHAKE:
            c2 = self._handshake.feed(data)
            if not self._handshake.done:
                return self._out.take()
            self._out.write(c2)
            self.state = ClientState.CONNECTING
            self._out.send(msg.set_chunk_size(self._out_chunk_size))
            self._out.encoder.set_chunk_size(self._out_chunk_size)
            self._out.send(msg.command("connect", _TX_CONNECT, {
                "app": self.app, "type": "nonprivate", "flashVer": FLASH_VER,
                "swfUrl": self.tc_url, "tcUrl": self.tc_url}))
            data = self._handshake.take_rest()
        for message in self._decoder.feed(data):
            if self.state is ClientState.CLOSED:
                break
            self._handle(message)
        self._out.ack(self._decoder.bytes_received)
        return self._out.take()

    def metadata(self, values: dict[str, Any]) -> bytes:
        """``@setDataFrame onMetaData`` for the destination (codec ids, size, rate)."""
        self._require_publishing()
        message = RtmpMessage(CSID_DATA, msg.DATA_AMF0, self.stream_id, 0, amf0.encode(
            "@setDataFrame", "onMetaData", amf0.EcmaArray(values)))
        return self._out.encoder.encode(message)

    def send_unit(self, unit: MediaUnit, timestamp: int) -> bytes:
        """The chunks of one media message carrying ``unit`` at ``timestamp`` (ms, the caller's clock)."""
        self._require_publishing()
        body = flv.unit_body(unit)
        if unit.kind is MediaKind.VIDEO:
            message = RtmpMessage(CSID_VIDEO, msg.VIDEO, self.stream_id, timestamp, body)
        else:
            message = RtmpMessage(CSID_AUDIO, msg.AUDIO, self.stream_id, timestamp, body)
        self.media_bytes += len(body)
        return self._out.encoder.encode(message)

    def finish(self) -> bytes:
        """End the publish cleanly: FCUnpublish, deleteStream.  The session is closed after it."""
        out = b""
        if self.state is ClientState.PUBLISHING:
            out += self._out.encoder.encode(msg.command("FCUnpublish", 0.0, None, self._stream_name))
            out += self._out.encoder.encode(msg.command("deleteStream", 0.0, None, float(self.stream_id)))
        self.state = ClientState.CLOSED
        return out

    # -- internals ---------------------------------------------------------

    def _require_publishing(self) -> None:
        if self.state is not ClientState.PUBLISHING:
            raise RuntimeError(f"media before the publish was accepted (state {self.state.value})")

    def _reject(self, code: str, description: str) -> None:
        self._out.emit(Rejected(code, description))
        self.state = ClientState.CLOSED

    def _handle(self, message: RtmpMessage) -> None:
        t = message.type_id
        if t in CONTROL_TYPES:
            self._out.answer_control(message)
        elif t in (msg.COMMAND_AMF0, msg.COMMAND_AMF3):
            self._command(msg.parse_command(message))
        # chunk size / abort are applied by the decoder; acks, bandwidth, data and media need nothing

    def _command(self, cmd: msg.Command) -> None:
        if cmd.name == "_error":
            info = _info(cmd)
            code = str(info.get("code") or "error")
            self._reject(code, str(info.get("description") or f"the destination answered _error to {self._pending()}"))
        elif cmd.name == "_result":
            if cmd.transaction_id == _TX_CONNECT and self.state is ClientState.CONNECTING:
                self.state = ClientState.CREATING
                self._out.send(msg.command("releaseStream", _TX_RELEASE, None, self._stream_name))
                self._out.send(msg.command("FCPublish", _TX_FCPUBLISH, None, self._stream_name))
                self._out.send(msg.command("createStream", _TX_CREATE, None))
            elif cmd.transaction_id == _TX_CREATE and self.state is ClientState.CREATING:
                stream_id = cmd.args[0] if cmd.args else None
                if not isinstance(stream_id, float) or not 0 < stream_id < 1 << 32 or stream_id != int(stream_id):
                    raise CommandError(f"createStream answered with stream id {stream_id!r}", "bad_command")
                self.stream_id = int(stream_id)
                self.state = ClientState.PUBLISH_PENDING
                self._out.send(msg.command("publish", 0.0, None, self._stream_name, "live",
                                       csid=CSID_DATA, stream_id=self.stream_id))
        elif cmd.name == "onStatus":
            info = _info(cmd)
            code = str(info.get("code") or "")
            level = str(info.get("level") or "")
            if level == "error" or code in ("NetStream.Publish.BadName", "NetStream.Publish.Rejected"):
                self._reject(code or "error", str(info.get("description") or code))
            elif code == "NetStream.Publish.Start" and self.state is ClientState.PUBLISH_PENDING:
                self.state = ClientState.PUBLISHING
                self._out.emit(PublishStarted(self.stream_id))
            elif code in ("NetStream.Unpublish.Success", "NetStream.Publish.Idle") and self.publishing:
                self.state = ClientState.CLOSED
                self._out.emit(StreamClosed(code))
        # onBWDone, onFCPublish, _checkbw ... need no answer

    def _pending(self) -> str:
        return {ClientState.CONNECTING: "connect", ClientState.CREATING: "createStream"}.get(self.state, "a command")


def _info(cmd: msg.Command) -> dict[str, Any]:
    """The status object of an _error/_result/onStatus (first dict among the arguments)."""
    for value in (*cmd.args, cmd.command_object):
        if isinstance(value, dict):
            return value
    return {}
