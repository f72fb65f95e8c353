"""A deliberately dumb RTMP client for sending malformed input to the server."""

from __future__ import annotations

import os
import socket
import struct


def amf0_string(value: str) -> bytes:
    raw = value.encode()
    return b"\x02" + struct.pack(">H", len(raw)) + raw


def amf0_number(value: float) -> bytes:
    return b"\x00" + struct.pack(">d", value)


def amf0_object(items: dict[str, bytes]) -> bytes:
    body = b"".join(struct.pack(">H", len(k)) + k.encode() + v for k, v in items.items())
    return b"\x03" + body + b"\x00\x00\x09"


def chunk(csid: int, type_id: int, payload: bytes, stream_id: int = 0, timestamp: int = 0,
          chunk_size: int = 128, length: int | None = None) -> bytes:
    """One message as fmt-0 chunk + fmt-3 continuations (csid < 64)."""
    length = len(payload) if length is None else length
    header = bytes([csid]) + timestamp.to_bytes(3, "big") + length.to_bytes(3, "big") + bytes([type_id]) \
        + struct.pack("<I", stream_id)
    out = bytearray(header + payload[:chunk_size])
    for offset in range(chunk_size, len(payload), chunk_size):
        out += bytes([0xC0 | csid]) + payload[offset:offset + chunk_size]
    return bytes(out)


class RawRtmp:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5, source: str | None = None) -> None:
        """``source``: the local address to connect from (another 127.0.0.x: another client)."""
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)

    def handshake(self) -> None:
        c1 = bytes(8) + os.urandom(1528)
        self.sock.sendall(b"\x03" + c1)
        s0s1s2 = self.recv_exactly(1 + 1536 + 1536)
        assert s0s1s2[0] == 3
        self.sock.sendall(s0s1s2[1:1537])  # C2 echoes S1

    def connect(self, app: str = "live") -> None:
        payload = amf0_string("connect") + amf0_number(1) + amf0_object(
            {"app": amf0_string(app), "tcUrl": amf0_string(f"rtmp://127.0.0.1/{app}")})
        self.send(chunk(3, 20, payload))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            part = self.sock.recv(n - len(buf))
            if not part:
                raise ConnectionError("closed")
            buf += part
        return bytes(buf)

    def closed_by_server(self, timeout: float = 10) -> bool:
        """Read until EOF; True if the server closed the connection within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        self.sock.close()
