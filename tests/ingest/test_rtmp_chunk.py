"""Chunk stream decoder/encoder: exact bytes, csid forms, timestamps, limits."""

from __future__ import annotations

import pytest

from ingest.rtmp.chunk import ChunkDecoder, ChunkEncoder, RtmpMessage, parse_set_chunk_size
from ingest.rtmp.errors import ChunkStreamError


def test_decode_hand_written_fmt0_message_split_in_two_chunks() -> None:
    # csid 3, fmt 0, ts 1000, length 200, type 20, stream 0; chunk size 128
    header = bytes([0x03]) + (1000).to_bytes(3, "big") + (200).to_bytes(3, "big") + b"\x14" + b"\x00\x00\x00\x00"
    body = bytes(range(200))
    data = header + body[:128] + b"\xc3" + body[128:]
    messages = ChunkDecoder().feed(data)
    assert messages == [RtmpMessage(3, 20, 0, 1000, body)]


def test_encoder_bytes_are_exact() -> None:
    enc = ChunkEncoder()
    body = bytes(range(200))
    first = enc.encode(RtmpMessage(3, 20, 0, 1000, body))
    assert first == (b"\x03" + (1000).to_bytes(3, "big") + (200).to_bytes(3, "big") + b"\x14\x00\x00\x00\x00"
                     + body[:128] + b"\xc3" + body[128:])
    # same stream, same length and type, new delta -> fmt 2; then same delta -> fmt 3
    second = enc.encode(RtmpMessage(3, 20, 0, 1040, b"x" * 200))
    assert second[:4] == b"\x83" + (40).to_bytes(3, "big")
    third = enc.encode(RtmpMessage(3, 20, 0, 1080, b"y" * 200))
    assert third[:1] == b"\xc3" and len(third) == 1 + 128 + 1 + 72
    # different length -> fmt 1
    fourth = enc.encode(RtmpMessage(3, 9, 0, 1100, b"z" * 5))
    assert fourth == b"\x43" + (20).to_bytes(3, "big") + (5).to_bytes(3, "big") + b"\x09" + b"z" * 5


@pytest.mark.parametrize("csid, header", [
    (2, b"\x02"), (63, b"\x3f"), (64, b"\x00\x00"), (319, b"\x00\xff"),
    (320, b"\x01\x00\x01"), (322, b"\x01\x02\x01"), (65599, b"\x01\xff\xff"),
])
def test_basic_header_forms(csid: int, header: bytes) -> None:
    data = ChunkEncoder().encode(RtmpMessage(csid, 8, 1, 0, b"ab"))
    assert data.startswith(header)
    assert ChunkDecoder().feed(data) == [RtmpMessage(csid, 8, 1, 0, b"ab")]


def test_three_byte_csid_is_little_endian() -> None:
    # b1 = 0x02, b2 = 0x01: csid = 1 * 256 + 2 + 64 = 322 (not 0x0201 + 64)
    data = b"\x01\x02\x01" + bytes(3) + (1).to_bytes(3, "big") + b"\x08" + bytes(4) + b"A"
    assert ChunkDecoder().feed(data)[0].csid == 322


def test_extended_timestamp_round_trip_and_continuation_chunks() -> None:
    enc = ChunkEncoder()
    ts = 0x01234567
    body = bytes(300)
    data = enc.encode(RtmpMessage(4, 9, 1, ts, body))
    assert data[1:4] == b"\xff\xff\xff"
    assert data[12:16] == ts.to_bytes(4, "big")
    # each fmt 3 continuation chunk repeats the extended timestamp
    assert data[16 + 128:16 + 128 + 5] == b"\xc4" + ts.to_bytes(4, "big")
    dec = ChunkDecoder()
    assert dec.feed(data) == [RtmpMessage(4, 9, 1, ts, body)]
    more = enc.encode(RtmpMessage(4, 9, 1, ts + 0x01000000, body))  # delta itself is extended
    assert dec.feed(more) == [RtmpMessage(4, 9, 1, ts + 0x01000000, body)]


def test_fmt3_new_message_after_fmt0_reuses_timestamp_as_delta() -> None:
    # libavformat semantics: after fmt 0 with ts 40, a fmt 3 message is at 80
    data = b"\x04" + (40).to_bytes(3, "big") + (1).to_bytes(3, "big") + b"\x08" + (1).to_bytes(4, "little") + b"A"
    data += b"\xc4" + b"B"
    assert [m.timestamp for m in ChunkDecoder().feed(data)] == [40, 80]


def test_round_trip_many_messages_with_chunk_size_changes() -> None:
    enc, dec = ChunkEncoder(), ChunkDecoder()
    messages = [RtmpMessage(csid, t, sid, ts, bytes([ts % 256]) * size)
                for csid, t, sid, ts, size in [(4, 9, 1, 0, 5000), (6, 8, 1, 0, 10), (4, 9, 1, 40, 5000),
                                               (4, 9, 1, 80, 5000), (6, 8, 1, 23, 10), (6, 8, 1, 46, 10),
                                               (70, 9, 1, 100, 0), (400, 18, 1, 100, 300)]]
    out = bytearray()
    for i, m in enumerate(messages):
        if i == 3:
            # a Set Chunk Size message mid-stream: the decoder applies it at once
            out += enc.encode(RtmpMessage(2, 1, 0, 0, (1000).to_bytes(4, "big")))
            enc.set_chunk_size(1000)
        out += enc.encode(m)
    whole = [m for m in dec.feed(bytes(out)) if m.type_id != 1]
    assert whole == messages
    assert dec.chunk_size == 1000
    # byte-at-a-time gives the same messages
    dec2 = ChunkDecoder()
    trickled = [m for i in range(len(out)) for m in dec2.feed(bytes(out[i:i + 1])) if m.type_id != 1]
    assert trickled == messages


def _set_chunk_size(value: int) -> bytes:
    return b"\x02" + bytes(3) + (4).to_bytes(3, "big") + b"\x01" + bytes(4) + value.to_bytes(4, "big")


@pytest.mark.parametrize("value, message", [
    (0, "chunk size 0 is out of range (1..2147483647)"),
    (1 << 31, "chunk size 2147483648 is out of range (1..2147483647)"),
    (0xFFFFFFFF, "chunk size 4294967295 is out of range (1..2147483647)"),
    ((16 << 20) + 1, "chunk size 16777217 exceeds the limit of 16777216 bytes"),
])
def test_bad_chunk_sizes(value: int, message: str) -> None:
    with pytest.raises(ChunkStreamError) as info:
        ChunkDecoder().feed(_set_chunk_size(value))
    assert str(info.value) == message
    assert info.value.code == "bad_chunk_size"


def test_valid_chunk_sizes() -> None:
    assert parse_set_chunk_size((1).to_bytes(4, "big")) == 1
    dec = ChunkDecoder()
    dec.feed(_set_chunk_size(16 << 20))
    assert dec.chunk_size == 16 << 20


def test_oversized_message_refused_as_soon_as_header_is_read() -> None:
    dec = ChunkDecoder()
    # The length field has 24 bits, so "50 MB" cannot be written; the largest
    # length a header can claim (16 MiB - 1) stands in for it.
    header = b"\x04" + bytes(3) + b"\xff\xff\xff" + b"\x09" + b"\x01\x00\x00\x00"
    with pytest.raises(ChunkStreamError) as info:
        dec.feed(header)  # no body at all has been sent
    assert str(info.value) == "message length 16777215 exceeds the limit of 8388608 bytes"
    assert info.value.code == "message_too_large"


def test_configurable_message_limit() -> None:
    dec = ChunkDecoder(max_message_size=100)
    ok = ChunkEncoder().encode(RtmpMessage(4, 9, 1, 0, bytes(100)))
    assert len(dec.feed(ok)) == 1
    with pytest.raises(ChunkStreamError, match="message length 101 exceeds the limit of 100 bytes"):
        ChunkDecoder(max_message_size=100).feed(ChunkEncoder().encode(RtmpMessage(4, 9, 1, 0, bytes(101))))


def test_partial_messages_are_bounded_across_chunk_streams() -> None:
    dec = ChunkDecoder(max_message_size=1000, max_buffered=2500)
    enc = ChunkEncoder()
    data = bytearray()
    for csid in (4, 5, 6):
        data += enc.encode(RtmpMessage(csid, 9, 1, 0, bytes(1000)))[:12 + 128]  # first chunk only
    with pytest.raises(ChunkStreamError) as info:
        dec.feed(bytes(data))
    assert str(info.value) == "partial messages would exceed the buffer limit of 2500 bytes"


def test_chunk_without_previous_header() -> None:
    with pytest.raises(ChunkStreamError) as info:
        ChunkDecoder().feed(b"\x44" + bytes(7))
    assert str(info.value) == "chunk stream 4: fmt 1 chunk without a previous header"


def test_new_header_before_message_completed() -> None:
    enc = ChunkEncoder()
    first_chunk = enc.encode(RtmpMessage(4, 9, 1, 0, bytes(300)))[:12 + 128]
    with pytest.raises(ChunkStreamError, match="chunk stream 4: new message header"):
        ChunkDecoder().feed(first_chunk + ChunkEncoder().encode(RtmpMessage(4, 9, 1, 0, b"x")))


def test_abort_drops_partial_message() -> None:
    enc = ChunkEncoder()
    dec = ChunkDecoder()
    partial = enc.encode(RtmpMessage(4, 9, 1, 0, bytes(300)))[:12 + 128]
    assert dec.feed(partial) == []
    assert not dec.idle
    abort = ChunkEncoder().encode(RtmpMessage(2, 2, 0, 0, (4).to_bytes(4, "big")))
    assert [m.type_id for m in dec.feed(abort)] == [2]
    assert dec.idle
    # a fresh message on csid 4 is accepted after the abort
    assert dec.feed(ChunkEncoder().encode(RtmpMessage(4, 9, 1, 5, b"ok")))[0].payload == b"ok"
