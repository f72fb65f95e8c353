"""The RTMP handshake, server side, as a pure state machine (no I/O).

Feed it the bytes the client sends; it answers S0+S1+S2 once C0+C1 are in and
reports completion once C2 is in.  Two forms exist in the wild:

* the *simple* handshake of the RTMP 1.0 spec (C1 carries a zero version
  field; S2 echoes C1) — GStreamer ``rtmp2sink`` and librtmp without SWF
  verification use it;
* the Flash Player 9 *digest* ("complex") handshake — libavformat (ffmpeg,
  PyAV) sends a C1 with a non-zero version and an HMAC-SHA256 digest, and
  checks the digest of S1 and S2 if S1 carries a non-zero version.

We answer the form the client used.  C2 is read but not verified: clients
differ in what they put there and nothing downstream depends on it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from collections.abc import Callable

from ingest.rtmp.errors import HandshakeError

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536
DIGEST_SIZE = 32

_KEY_TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
#: "Genuine Adobe Flash Player 001" + tail: the first 30 bytes sign C1.
CLIENT_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL
#: "Genuine Adobe Flash Media Server 001" + tail: the first 36 bytes sign S1.
SERVER_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL
#: Version we announce in a digest S1 (any value >= 3 in the first byte tells
#: libavformat to verify our digests).
SERVER_VERSION = bytes([4, 5, 0, 1])


class HandshakeState(enum.Enum):
    WAIT_C0C1 = "wait_c0c1"
    WAIT_C2 = "wait_c2"
    DONE = "done"


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def digest_offset(block: bytes | bytearray, scheme: int) -> int:
    """Where the 32-byte digest sits in a 1536-byte C1/S1 for ``scheme`` 0 or 1.

    Scheme 0 keeps its offset bytes at 8..11 (libavformat's client uses it),
    scheme 1 at 772..775; the offset is their sum mod 728 past the 4 bytes.
    """
    base = 8 if scheme == 0 else 772
    return sum(block[base:base + 4]) % 728 + base + 4


def _without(block: bytes, offset: int) -> bytes:
    return block[:offset] + block[offset + DIGEST_SIZE:]


def find_client_digest(c1: bytes) -> tuple[int, bytes] | None:
    """Return ``(scheme, digest)`` if C1 carries a valid FP9 digest, else None."""
    for scheme in (0, 1):
        offset = digest_offset(c1, scheme)
        digest = c1[offset:offset + DIGEST_SIZE]
        if hmac.compare_digest(digest, _hmac(CLIENT_KEY[:30], _without(c1, offset))):
            return scheme, digest
    return None


def make_digest_s1(scheme: int, random: Callable[[int], bytes] = os.urandom, timestamp: int = 0) -> bytes:
    """A digest S1: time, version, random bytes signed with the FMS key."""
    block = bytearray(timestamp.to_bytes(4, "big") + SERVER_VERSION + random(HANDSHAKE_SIZE - 8))
    offset = digest_offset(block, scheme)
    block[offset:offset + DIGEST_SIZE] = _hmac(SERVER_KEY[:36], _without(bytes(block), offset))
    return bytes(block)


def make_digest_s2(client_digest: bytes, random: Callable[[int], bytes] = os.urandom) -> bytes:
    """A digest S2: random bytes whose last 32 bytes sign them with a key
    derived from the client's C1 digest."""
    body = random(HANDSHAKE_SIZE - DIGEST_SIZE)
    key = _hmac(SERVER_KEY, client_digest)
    return body + _hmac(key, body)


class ServerHandshake:
    """Server side of the handshake.

    >>> hs = ServerHandshake()
    >>> reply = hs.feed(c0c1)   # -> S0+S1+S2 (3073 bytes)
    >>> hs.feed(c2)             # -> b""; hs.done is True, hs.take_rest() has any extra bytes
    """

    def __init__(self, random: Callable[[int], bytes] = os.urandom) -> None:
        self._random = random
        self._buffer = bytearray()
        self.state = HandshakeState.WAIT_C0C1
        #: True once the client used the FP9 digest form.
        self.digest: bool = False

    @property
    def done(self) -> bool:
        return self.state is HandshakeState.DONE

    @property
    def held_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes | bytearray) -> bytes:
        """Take client bytes; return the bytes to send (possibly empty)."""
        if self.state is HandshakeState.DONE:
            self._buffer += data
            return b""
        self._buffer += data
        out = b""
        if self.state is HandshakeState.WAIT_C0C1:
            if self._buffer and self._buffer[0] != RTMP_VERSION:
                # 6 is RTMPE (encrypted), anything else is not RTMP at all.
                raise HandshakeError(
                    f"unsupported RTMP version byte 0x{self._buffer[0]:02x} (expected 0x03)", "bad_handshake")
            if len(self._buffer) < 1 + HANDSHAKE_SIZE:
                return b""
            c1 = bytes(self._buffer[1:1 + HANDSHAKE_SIZE])
            del self._buffer[:1 + HANDSHAKE_SIZE]
            out = self._answer(c1)
            self.state = HandshakeState.WAIT_C2
        if self.state is HandshakeState.WAIT_C2 and len(self._buffer) >= HANDSHAKE_SIZE:
            del self._buffer[:HANDSHAKE_SIZE]
            self.state = HandshakeState.DONE
        return out

    def take_rest(self) -> bytes:
        """Bytes received after C2 (the start of the chunk stream)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def _answer(self, c1: bytes) -> bytes:
        found = find_client_digest(c1) if c1[4:8] != b"\x00\x00\x00\x00" else None
        if found is None:
            # Simple handshake: S1 with a zero version (so digest-capable
            # clients do not try to verify it), S2 = echo of C1.
            s1 = bytes(8) + self._random(HANDSHAKE_SIZE - 8)
            return bytes([RTMP_VERSION]) + s1 + c1
        self.digest = True
        scheme, client_digest = found
        return bytes([RTMP_VERSION]) + make_digest_s1(scheme, self._random) + make_digest_s2(client_digest, self._random)


#: Version we announce in a digest C1 (what libavformat's client sends: 9.0.124.2).
CLIENT_VERSION = bytes([9, 0, 124, 2])


def make_digest_c1(random: Callable[[int], bytes] = os.urandom, timestamp: int = 0) -> bytes:
    """A digest C1 (scheme 0, like libavformat): time, version, random bytes signed with the FP key."""
    block = bytearray(timestamp.to_bytes(4, "big") + CLIENT_VERSION + random(HANDSHAKE_SIZE - 8))
    offset = digest_offset(block, 0)
    block[offset:offset + DIGEST_SIZE] = _hmac(CLIENT_KEY[:30], _without(bytes(block), offset))
    return bytes(block)


def find_server_digest(s1: bytes) -> bytes | None:
    """The FMS digest of a digest S1 (either scheme), or None if S1 carries none."""
    for scheme in (0, 1):
        offset = digest_offset(s1, scheme)
        digest = s1[offset:offset + DIGEST_SIZE]
        if hmac.compare_digest(digest, _hmac(SERVER_KEY[:36], _without(s1, offset))):
            return digest
    return None


class ClientHandshake:
    """Client side of the handshake (the FP9 digest form, as libavformat and OBS send it).

    >>> hs = ClientHandshake()
    >>> c0c1 = hs.start()            # send it
    >>> c2 = hs.feed(s0s1s2)         # -> C2 once S0+S1+S2 are in; hs.done, hs.take_rest()

    C2 answers S1's digest when the server signed S1 (nginx-rtmp, FMS, the big
    platforms) and echoes S1 when it did not (the simple handshake).  S2 is not
    verified, as libavformat does not by default.
    """

    def __init__(self, random: Callable[[int], bytes] = os.urandom) -> None:
        self._random = random
        self._buffer = bytearray()
        self._started = False
        self.state = HandshakeState.WAIT_C0C1  # here: waiting for S0+S1+S2
        #: True once the server signed S1 (the digest form)
        self.digest = False

    @property
    def done(self) -> bool:
        return self.state is HandshakeState.DONE

    def start(self) -> bytes:
        if self._started:
            raise RuntimeError("handshake already started")
        self._started = True
        return bytes([RTMP_VERSION]) + make_digest_c1(self._random)

    def feed(self, data: bytes) -> bytes:
        """Take server bytes; return C2 once S0+S1+S2 are complete (else b"")."""
        self._buffer += data
        if self.state is HandshakeState.DONE:
            return b""
        if self._buffer and self._buffer[0] != RTMP_VERSION:
            raise HandshakeError(
                f"server answered RTMP version byte 0x{self._buffer[0]:02x} (expected 0x03)", "bad_handshake")
        if len(self._buffer) < 1 + 2 * HANDSHAKE_SIZE:
            return b""
        s1 = bytes(self._buffer[1:1 + HANDSHAKE_SIZE])
        del self._buffer[:1 + 2 * HANDSHAKE_SIZE]
        self.state = HandshakeState.DONE
        server_digest = find_server_digest(s1) if s1[4:8] != b"\x00\x00\x00\x00" else None
        if server_digest is None:
            return s1  # simple handshake: C2 echoes S1
        self.digest = True
        body = self._random(HANDSHAKE_SIZE - DIGEST_SIZE)
        key = _hmac(CLIENT_KEY, server_digest)
        return body + _hmac(key, body)

    def take_rest(self) -> bytes:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest
