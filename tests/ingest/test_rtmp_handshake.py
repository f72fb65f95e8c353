"""Handshake state machine: simple echo, FP9 digest answers, garbage."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from ingest.rtmp.errors import HandshakeError, RtmpProtocolError
from ingest.rtmp.handshake import (
    CLIENT_KEY,
    HANDSHAKE_SIZE,
    SERVER_KEY,
    HandshakeState,
    ServerHandshake,
    digest_offset,
    find_client_digest,
)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def digest_c1(scheme: int) -> bytes:
    """A C1 as libavformat builds it: version 9.0.124.2 and a signed digest."""
    block = bytearray(bytes(4) + bytes([9, 0, 124, 2]) + os.urandom(HANDSHAKE_SIZE - 8))
    off = digest_offset(block, scheme)
    block[off:off + 32] = _hmac(CLIENT_KEY[:30], bytes(block[:off] + block[off + 32:]))
    return bytes(block)


def test_simple_handshake_echoes_c1_and_keeps_trailing_bytes() -> None:
    hs = ServerHandshake()
    c1 = bytes(8) + os.urandom(HANDSHAKE_SIZE - 8)
    reply = hs.feed(b"\x03" + c1)
    assert len(reply) == 1 + 2 * HANDSHAKE_SIZE
    assert reply[0] == 3
    assert reply[1 + 4:1 + 8] == bytes(4)  # S1 version zero: clients must not verify a digest
    assert reply[1 + HANDSHAKE_SIZE:] == c1  # S2 echoes C1
    assert hs.state is HandshakeState.WAIT_C2 and not hs.digest
    assert hs.feed(reply[1:1 + HANDSHAKE_SIZE] + b"\x02\x00") == b""
    assert hs.done
    assert hs.take_rest() == b"\x02\x00"


def test_handshake_fed_one_byte_at_a_time() -> None:
    hs = ServerHandshake()
    c0c1 = b"\x03" + bytes(8) + os.urandom(HANDSHAKE_SIZE - 8)
    out = b"".join(hs.feed(c0c1[i:i + 1]) for i in range(len(c0c1)))
    assert len(out) == 1 + 2 * HANDSHAKE_SIZE
    for i in range(HANDSHAKE_SIZE):
        assert not hs.done
        hs.feed(b"\x00")
    assert hs.done


@pytest.mark.parametrize("scheme", [0, 1])
def test_digest_handshake_is_answered_with_valid_digests(scheme: int) -> None:
    c1 = digest_c1(scheme)
    found = find_client_digest(c1)
    assert found is not None and found[0] == scheme
    client_digest = found[1]
    hs = ServerHandshake()
    reply = hs.feed(b"\x03" + c1)
    assert hs.digest
    s1 = reply[1:1 + HANDSHAKE_SIZE]
    s2 = reply[1 + HANDSHAKE_SIZE:]
    assert s1[4] >= 3  # libavformat verifies digests only when S1's version says so
    off = digest_offset(s1, scheme)
    assert s1[off:off + 32] == _hmac(SERVER_KEY[:36], s1[:off] + s1[off + 32:])
    # What libavformat checks in S2:
    key = _hmac(SERVER_KEY, client_digest)
    assert s2[-32:] == _hmac(key, s2[:-32])


def test_nonzero_version_without_digest_gets_simple_answer() -> None:
    c1 = bytes(4) + b"\x01\x02\x03\x04" + bytes(HANDSHAKE_SIZE - 8)
    hs = ServerHandshake()
    reply = hs.feed(b"\x03" + c1)
    assert not hs.digest
    assert reply[1 + HANDSHAKE_SIZE:] == c1


@pytest.mark.parametrize("first", [b"G", b"\x06", b"\x00", b"\x16"])
def test_wrong_version_byte_is_refused_at_once(first: bytes) -> None:
    hs = ServerHandshake()
    with pytest.raises(HandshakeError) as info:
        hs.feed(first + b"ET / HTTP/1.1\r\n")
    assert str(info.value) == f"unsupported RTMP version byte 0x{first[0]:02x} (expected 0x03)"
    assert info.value.code == "bad_handshake"
    assert isinstance(info.value, RtmpProtocolError) and isinstance(info.value, ValueError)
