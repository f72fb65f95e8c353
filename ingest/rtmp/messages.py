"""RTMP message types, protocol control messages and command helpers (pure).

Builders return :class:`~ingest.rtmp.chunk.RtmpMessage` objects on the chunk
streams servers conventionally use: 2 for protocol control, 3 for
NetConnection commands, 5 for NetStream status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingest.rtmp import amf0
from ingest.rtmp.chunk import RtmpMessage
from ingest.rtmp.errors import CommandError

# Message type ids (RTMP 1.0 spec sections 5.4, 7.1).
SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
SHARED_OBJECT_AMF3 = 16
COMMAND_AMF3 = 17
DATA_AMF0 = 18
SHARED_OBJECT_AMF0 = 19
COMMAND_AMF0 = 20
AGGREGATE = 22

# User control event types (section 7.1.7).
STREAM_BEGIN = 0
STREAM_EOF = 1
STREAM_DRY = 2
SET_BUFFER_LENGTH = 3
STREAM_IS_RECORDED = 4
PING_REQUEST = 6
PING_RESPONSE = 7

# Set Peer Bandwidth limit types.
LIMIT_HARD = 0
LIMIT_SOFT = 1
LIMIT_DYNAMIC = 2

CSID_CONTROL = 2
CSID_COMMAND = 3
CSID_STATUS = 5


def _u32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "big")


def _control(type_id: int, payload: bytes) -> RtmpMessage:
    return RtmpMessage(CSID_CONTROL, type_id, 0, 0, payload)


def set_chunk_size(size: int) -> RtmpMessage:
    return _control(SET_CHUNK_SIZE, _u32(size & 0x7FFFFFFF))


def abort(csid: int) -> RtmpMessage:
    return _control(ABORT, _u32(csid))


def acknowledgement(sequence_number: int) -> RtmpMessage:
    return _control(ACKNOWLEDGEMENT, _u32(sequence_number))


def window_ack_size(size: int) -> RtmpMessage:
    return _control(WINDOW_ACK_SIZE, _u32(size))


def set_peer_bandwidth(size: int, limit_type: int = LIMIT_DYNAMIC) -> RtmpMessage:
    return _control(SET_PEER_BANDWIDTH, _u32(size) + bytes([limit_type]))


def user_control(event_type: int, data: bytes) -> RtmpMessage:
    return _control(USER_CONTROL, event_type.to_bytes(2, "big") + data)


def stream_begin(stream_id: int) -> RtmpMessage:
    return user_control(STREAM_BEGIN, _u32(stream_id))


def parse_u32(payload: bytes, what: str) -> int:
    """The single 32-bit field of an ack / window ack size / abort message."""
    if len(payload) < 4:
        raise CommandError(f"{what} message has {len(payload)} bytes, expected 4", "bad_control")
    return int.from_bytes(payload[:4], "big")


def parse_user_control(payload: bytes) -> tuple[int, bytes]:
    """Return (event type, event data) of a User Control message."""
    if len(payload) < 2:
        raise CommandError(f"user control message has {len(payload)} bytes, expected at least 2", "bad_control")
    return int.from_bytes(payload[:2], "big"), payload[2:]


# -- commands -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Command:
    """An AMF command: name, transaction id, command object, further arguments."""

    name: str
    transaction_id: float
    command_object: Any = None
    args: tuple[Any, ...] = field(default=())


def decode_amf_body(message: RtmpMessage) -> list[Any]:
    """AMF0 values of a command/data message; AMF3-typed messages (17, 15)
    start with a format byte that we skip (their values are AMF0 in practice)."""
    payload = message.payload
    if message.type_id in (COMMAND_AMF3, DATA_AMF3) and payload[:1] == b"\x00":
        payload = payload[1:]
    return amf0.decode_all(payload)


def parse_command(message: RtmpMessage) -> Command:
    values = decode_amf_body(message)
    if len(values) < 2 or not isinstance(values[0], str) or not isinstance(values[1], float):
        raise CommandError("command message does not start with a name and a transaction id", "bad_command")
    rest = values[2:]
    return Command(values[0], values[1], rest[0] if rest else None, tuple(rest[1:]))


def command(name: str, transaction_id: float, command_object: Any = None, *args: Any,
            csid: int = CSID_COMMAND, stream_id: int = 0) -> RtmpMessage:
    return RtmpMessage(csid, COMMAND_AMF0, stream_id, 0, amf0.encode(name, transaction_id, command_object, *args))


def result(transaction_id: float, command_object: Any = None, *args: Any) -> RtmpMessage:
    return command("_result", transaction_id, command_object, *args)


def error(transaction_id: float, command_object: Any = None, *args: Any) -> RtmpMessage:
    return command("_error", transaction_id, command_object, *args)


def status_info(level: str, code: str, description: str, **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"level": level, "code": code, "description": description}
    info.update(extra)
    return info


def on_status(stream_id: int, level: str, code: str, description: str, **extra: Any) -> RtmpMessage:
    """A NetStream ``onStatus`` (transaction 0, null command object)."""
    return command("onStatus", 0.0, None, status_info(level, code, description, **extra),
                   csid=CSID_STATUS, stream_id=stream_id)


def on_bw_done() -> RtmpMessage:
    return command("onBWDone", 0.0, None, 8192.0)


def connect_result(transaction_id: float, object_encoding: float = 0.0) -> RtmpMessage:
    return result(
        transaction_id,
        {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0},
        status_info("status", "NetConnection.Connect.Success", "Connection succeeded.",
                    objectEncoding=object_encoding),
    )


def data_message(stream_id: int, *values: Any, timestamp: int = 0) -> RtmpMessage:
    return RtmpMessage(4, DATA_AMF0, stream_id, timestamp, amf0.encode(*values))
