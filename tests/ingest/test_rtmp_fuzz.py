"""Fuzz: whatever bytes arrive, the parsers raise only RtmpProtocolError."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.rtmp import amf0
from ingest.rtmp import messages as msg
from ingest.rtmp.chunk import ChunkDecoder, ChunkEncoder, RtmpMessage
from ingest.rtmp.errors import RtmpProtocolError
from ingest.rtmp.session import RtmpSession

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_HANDSHAKE = b"\x03" + bytes(1536) + bytes(1536)
_ENC = ChunkEncoder()
_PREFIX = _HANDSHAKE + ChunkEncoder().encode(msg.command("connect", 1.0, {"app": "live"}))


def _publishing_prefix() -> bytes:
    enc = ChunkEncoder()
    return _HANDSHAKE + b"".join(enc.encode(m) for m in [
        msg.command("connect", 1.0, {"app": "live"}),
        msg.command("createStream", 2.0, None),
        msg.command("publish", 3.0, None, "key", "live", csid=8, stream_id=1),
    ])


@FUZZ
@given(st.lists(st.binary(max_size=600), max_size=6))
def test_chunk_decoder_only_raises_protocol_errors(chunks: list[bytes]) -> None:
    dec = ChunkDecoder(max_message_size=4096)
    try:
        for data in chunks:
            dec.feed(data)
    except RtmpProtocolError:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_amf0_only_raises_protocol_errors(data: bytes) -> None:
    try:
        amf0.decode_all(data)
    except RtmpProtocolError:
        pass


@FUZZ
@given(st.sampled_from([b"", _PREFIX]), st.lists(st.binary(max_size=600), max_size=6))
def test_session_only_raises_protocol_errors(prefix: bytes, chunks: list[bytes]) -> None:
    session = RtmpSession(max_message_size=4096)
    try:
        session.receive(prefix)
        for data in chunks:
            session.receive(data)
        session.eof()
    except RtmpProtocolError:
        pass


@FUZZ
@given(st.integers(min_value=1, max_value=22), st.binary(max_size=300), st.integers(0, 2**32 - 1))
def test_publishing_session_with_random_message_bodies(type_id: int, body: bytes, ts: int) -> None:
    """Well-framed messages with random bodies reach the AMF/FLV/control parsers."""
    session = RtmpSession()
    session.receive(_publishing_prefix())
    session.accept_publish()
    data = ChunkEncoder().encode(RtmpMessage(6, type_id, 1, ts, body))
    try:
        session.receive(data)
    except RtmpProtocolError:
        pass


def test_random_garbage_smoke() -> None:
    """A fixed batch of random junk after the handshake, for a quick sanity run."""
    for _ in range(200):
        session = RtmpSession()
        try:
            session.receive(_PREFIX + os.urandom(512))
        except RtmpProtocolError:
            pass
