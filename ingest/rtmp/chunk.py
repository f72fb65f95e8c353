"""The RTMP chunk stream: a pure decoder (bytes in, messages out) and encoder.

Chunk layer facts we implement (RTMP 1.0 spec, section 5.3):

* basic header: ``fmt`` (2 bits) and a chunk stream id in 1, 2 or 3 bytes;
  ids 64..319 use ``0`` + one byte (id - 64), ids up to 65599 use ``1`` + two
  bytes *little-endian* (id = b2 * 256 + b1 + 64);
* message header of 11/7/3/0 bytes for fmt 0/1/2/3; a 3-byte timestamp field
  of 0xFFFFFF means a 4-byte extended timestamp follows (also in fmt 3 chunks
  of a chunk stream whose last full header used one);
* fmt 3 starting a new message reuses the previous delta; like libavformat we
  treat a fmt 0 timestamp as that chunk stream's delta, which is what
  libavformat's own writer assumes when it compresses to fmt 3;
* Set Chunk Size (type 1) and Abort (type 2) act on the chunk layer itself, so
  the decoder applies them the moment they complete (the very next chunk may
  already use the new size); they are still handed up as messages.

Limits are explicit: a message length above ``max_message_size`` is refused as
soon as its header is read, partial messages across all chunk streams are
bounded by ``max_buffered``, and chunk sizes outside 1..2^31-1 (or above the
``max_chunk_size`` sanity bound) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.rtmp.errors import ChunkStreamError

DEFAULT_CHUNK_SIZE = 128
#: Largest chunk size the spec allows (31 bits).
SPEC_MAX_CHUNK_SIZE = (1 << 31) - 1
#: Our sanity bound: nobody needs chunks larger than this.
MAX_CHUNK_SIZE = 16 * 1024 * 1024
DEFAULT_MAX_MESSAGE_SIZE = 8 * 1024 * 1024
MAX_CSID = 65599
_EXTENDED = 0xFFFFFF
_MSG_SET_CHUNK_SIZE = 1
_MSG_ABORT = 2
#: command messages (AMF3, AMF0)
_COMMANDS = (17, 20)
#: message header size by chunk fmt
_HEADER_SIZES = (11, 7, 3, 0)


@dataclass(frozen=True, slots=True)
class RtmpMessage:
    """One complete RTMP message."""

    csid: int
    type_id: int
    stream_id: int
    #: absolute timestamp, milliseconds, 32-bit wrapping
    timestamp: int
    payload: bytes


def validate_chunk_size(size: int, limit: int = MAX_CHUNK_SIZE) -> int:
    """Return ``size`` if it is a chunk size we accept, else raise."""
    if size < 1 or size > SPEC_MAX_CHUNK_SIZE:
        raise ChunkStreamError(f"chunk size {size} is out of range (1..{SPEC_MAX_CHUNK_SIZE})", "bad_chunk_size")
    if size > limit:
        raise ChunkStreamError(f"chunk size {size} exceeds the limit of {limit} bytes", "bad_chunk_size")
    return size


def parse_set_chunk_size(payload: bytes, limit: int = MAX_CHUNK_SIZE) -> int:
    """The chunk size carried by a Set Chunk Size message (validated)."""
    if len(payload) != 4:
        raise ChunkStreamError(f"set chunk size message has {len(payload)} bytes, expected 4", "bad_chunk_size")
    # The top bit MUST be zero: reading all 32 bits lets 2^31 fail the range check.
    return validate_chunk_size(int.from_bytes(payload, "big"), limit)


@dataclass(slots=True)
class _StreamState:
    """What a chunk stream remembers between chunks."""

    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    #: bytes of the message being assembled; None when between messages
    partial: bytearray | None = None
    remaining: int = 0


class ChunkDecoder:
    """Reassemble RTMP messages from a chunk stream.

    ``feed(data)`` returns every message completed by ``data``; incomplete
    chunks stay buffered.  Raises :class:`ChunkStreamError` on malformed or
    oversized input; after an error the decoder must not be fed again.
    """

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 max_buffered: int | None = None, max_chunk_size: int = MAX_CHUNK_SIZE) -> None:
        self.max_message_size = self.max_buffered = 0
        #: said after a limit in the errors (why the limit is what it is)
        self.limit_note = ""
        self.set_limits(max_message_size, max_buffered)
        self.max_chunk_size = max_chunk_size
        #: stop parsing after each command message (the rest stays buffered, ``stopped`` is set):
        #: the caller may change the limits before the next feed (``feed(b"")`` goes on)
        self.stop_after_commands = False
        self.stopped = False
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.bytes_received = 0
        self._buffer = bytearray()
        self._streams: dict[int, _StreamState] = {}
        # Declared lengths of the messages being assembled, all chunk streams:
        # reserving the whole length up front bounds memory before it is used.
        self._buffered = 0

    @property
    def idle(self) -> bool:
        """True when no chunk or message is half-received."""
        return not self._buffer and self._buffered == 0 and not any(
            s.partial is not None for s in self._streams.values())

    @property
    def held_bytes(self) -> int:
        """Bytes held between feeds: an incomplete chunk and the partial messages."""
        return len(self._buffer) + sum(len(s.partial) for s in self._streams.values() if s.partial is not None)

    def set_limits(self, max_message_size: int, max_buffered: int | None = None, note: str = "") -> None:
        """Change the message size bounds from the next message header on (``note`` ends their errors).

        Messages already being assembled keep the length they announced.
        """
        if max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        self.max_message_size = max_message_size
        self.max_buffered = max_buffered if max_buffered is not None else 2 * max_message_size
        self.limit_note = note

    def set_chunk_size(self, size: int) -> None:
        self.chunk_size = validate_chunk_size(size, self.max_chunk_size)

    def abort(self, csid: int) -> None:
        """Drop the partial message of ``csid`` (Abort Message)."""
        state = self._streams.get(csid)
        if state is not None and state.partial is not None:
            self._buffered -= state.length
            state.partial = None

    def feed(self, data: bytes | bytearray) -> list[RtmpMessage]:
        # One loop over every chunk ``data`` completes, with the state in locals:
        # this runs for every read of every publisher.  Bytes are parsed where
        # they are (the read itself when nothing was left over); only an
        # incomplete tail is kept, and bodies are copied once, out of a
        # memoryview, into the message being assembled.
        self.bytes_received += len(data)
        self.stopped = False
        if self._buffer:
            self._buffer += data
            buf: bytes | bytearray = self._buffer
        else:
            buf = data
        end = len(buf)
        messages: list[RtmpMessage] = []
        streams = self._streams
        pos = start = 0
        view = memoryview(buf)
        try:
            while pos < end:
                start = pos
                first = buf[pos]
                fmt = first >> 6
                csid = first & 0x3F
                pos += 1
                if csid == 0:
                    if end - pos < 1:
                        break
                    csid = buf[pos] + 64
                    pos += 1
                elif csid == 1:
                    if end - pos < 2:
                        break
                    csid = buf[pos + 1] * 256 + buf[pos] + 64
                    pos += 2
                header_size = _HEADER_SIZES[fmt]
                if end - pos < header_size:
                    break
                state = streams.get(csid)
                if state is None and fmt != 0:
                    raise ChunkStreamError(
                        f"chunk stream {csid}: fmt {fmt} chunk without a previous header", "bad_chunk")
                length = type_id = stream_id = 0
                if fmt <= 2:
                    ts_field = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
                    if fmt <= 1:
                        length = (buf[pos + 3] << 16) | (buf[pos + 4] << 8) | buf[pos + 5]
                        type_id = buf[pos + 6]
                        # Refuse an oversized message as soon as its header is in, before
                        # waiting for (or buffering) any of its body.
                        if length > self.max_message_size:
                            raise ChunkStreamError(
                                f"message length {length} exceeds the limit of {self.max_message_size} bytes"
                                + self.limit_note, "message_too_large")
                        if fmt == 0:
                            stream_id = int.from_bytes(buf[pos + 7:pos + 11], "little")
                    extended = ts_field == _EXTENDED
                else:
                    ts_field = 0
                    extended = state.extended if state is not None else False
                pos += header_size
                if extended:
                    if end - pos < 4:
                        break
                    if fmt <= 2:
                        ts_field = int.from_bytes(buf[pos:pos + 4], "big")
                    pos += 4
                partial = state.partial if state is not None else None
                if partial is not None:
                    if fmt != 3:
                        raise ChunkStreamError(f"chunk stream {csid}: new message header (fmt {fmt}) before the "
                                               "previous message completed", "bad_chunk")
                    remaining = state.remaining  # type: ignore[union-attr]
                else:
                    remaining = length if fmt <= 1 else state.length  # type: ignore[union-attr]
                take = self.chunk_size if self.chunk_size < remaining else remaining
                if end - pos < take:
                    break

                # The chunk is complete: commit header state.
                if state is None:
                    state = streams[csid] = _StreamState()
                if partial is None:  # first chunk of a new message
                    if fmt == 0:
                        state.timestamp = ts_field
                        state.delta = ts_field
                        state.length, state.type_id, state.stream_id = length, type_id, stream_id
                    elif fmt == 1:
                        state.delta = ts_field
                        state.timestamp = (state.timestamp + ts_field) & 0xFFFFFFFF
                        state.length, state.type_id = length, type_id
                    elif fmt == 2:
                        state.delta = ts_field
                        state.timestamp = (state.timestamp + ts_field) & 0xFFFFFFFF
                    else:
                        state.timestamp = (state.timestamp + state.delta) & 0xFFFFFFFF
                    if fmt <= 2:
                        state.extended = extended
                    if self._buffered + state.length > self.max_buffered:
                        raise ChunkStreamError(f"partial messages would exceed the buffer limit of "
                                               f"{self.max_buffered} bytes{self.limit_note}", "buffer_overflow")
                    if take == state.length:
                        # The whole message in one chunk (most audio): no assembly buffer.
                        pos += take
                        if self._deliver(RtmpMessage(csid, state.type_id, state.stream_id, state.timestamp,
                                                     bytes(view[pos - take:pos])), messages):
                            start = pos
                            break
                        continue
                    partial = state.partial = bytearray(view[pos:pos + take])
                    state.remaining = state.length - take
                    self._buffered += state.length
                else:
                    partial += view[pos:pos + take]
                    state.remaining -= take
                pos += take
                if state.remaining > 0:
                    continue
                self._buffered -= state.length
                state.partial = None
                if self._deliver(RtmpMessage(csid, state.type_id, state.stream_id, state.timestamp, bytes(partial)),
                                 messages):
                    start = pos
                    break
            else:
                start = pos
        finally:
            view.release()
            # ``start``: where the first incomplete chunk begins (``end`` if none is).
            if buf is self._buffer:
                del self._buffer[:start]
            elif start < end:
                self._buffer += buf[start:]
        return messages

    # -- internals -------------------------------------------------------

    def _deliver(self, message: RtmpMessage, messages: list[RtmpMessage]) -> bool:
        """Add a complete message; apply it when it is protocol control.  True: stop here (a
        command message while ``stop_after_commands``)."""
        messages.append(message)
        if message.type_id <= _MSG_ABORT:
            self._apply_control(message)
        elif self.stop_after_commands and message.type_id in _COMMANDS:
            self.stopped = True
            return True
        return False

    def _apply_control(self, message: RtmpMessage) -> None:
        if message.stream_id != 0:
            return
        if message.type_id == _MSG_SET_CHUNK_SIZE:
            self.chunk_size = parse_set_chunk_size(message.payload, self.max_chunk_size)
        elif message.type_id == _MSG_ABORT:
            if len(message.payload) != 4:
                raise ChunkStreamError(f"abort message has {len(message.payload)} bytes, expected 4")
            self.abort(int.from_bytes(message.payload, "big"))


@dataclass(slots=True)
class _OutState:
    timestamp: int
    delta: int
    length: int
    type_id: int
    stream_id: int
    extended: bool


class ChunkEncoder:
    """Split messages into chunks, compressing headers like libavformat does."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.chunk_size = validate_chunk_size(chunk_size)
        self._streams: dict[int, _OutState] = {}

    def set_chunk_size(self, size: int) -> None:
        """Use ``size`` from now on (send the Set Chunk Size message first)."""
        self.chunk_size = validate_chunk_size(size)

    def encode(self, message: RtmpMessage) -> bytes:
        csid = message.csid
        if not 2 <= csid <= MAX_CSID:
            raise ValueError(f"chunk stream id {csid} is out of range (2..{MAX_CSID})")
        length = len(message.payload)
        if length >= 1 << 24:
            raise ValueError(f"message of {length} bytes is too long for RTMP")
        timestamp = message.timestamp & 0xFFFFFFFF
        prev = self._streams.get(csid)
        delta = (timestamp - prev.timestamp) if prev is not None else -1
        if prev is None or prev.stream_id != message.stream_id or delta < 0:
            fmt, ts_field = 0, timestamp
        elif prev.length != length or prev.type_id != message.type_id:
            fmt, ts_field = 1, delta
        elif prev.delta != delta:
            fmt, ts_field = 2, delta
        else:
            fmt, ts_field = 3, delta
        extended = (ts_field >= _EXTENDED) if fmt <= 2 else prev.extended  # type: ignore[union-attr]
        out = bytearray(_basic_header(fmt, csid))
        field3 = (_EXTENDED if extended else ts_field).to_bytes(3, "big")
        if fmt <= 2:
            out += field3
        if fmt <= 1:
            out += length.to_bytes(3, "big") + bytes([message.type_id])
        if fmt == 0:
            out += message.stream_id.to_bytes(4, "little")
        ext = ts_field.to_bytes(4, "big") if extended else b""
        out += ext
        payload = message.payload
        out += payload[:self.chunk_size]
        cont_header = _basic_header(3, csid) + ext
        for offset in range(self.chunk_size, length, self.chunk_size):
            out += cont_header
            out += payload[offset:offset + self.chunk_size]
        self._streams[csid] = _OutState(timestamp, ts_field, length, message.type_id, message.stream_id, extended)
        return bytes(out)


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([(fmt << 6) | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    rest = csid - 64
    return bytes([(fmt << 6) | 1, rest & 0xFF, rest >> 8])
