"""A raw-socket HTTP/1.1 client: the request body can go out in two TCP segments with a pause between."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                split_at: int | None = None, pause: float = 0.3, timeout: float = 20) -> RawResponse:
    """Send one request to 127.0.0.1:``port``; with ``split_at`` the body's first ``split_at`` bytes go
    with the head, the rest ``pause`` seconds later (TCP_NODELAY: two segments on the wire)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}",
             "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if split_at is None:
            sock.sendall(head + body)
        else:
            sock.sendall(head + body[:split_at])
            time.sleep(pause)
            sock.sendall(body[split_at:])
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    raw_head, _, payload = bytes(received).partition(b"\r\n\r\n")
    status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    response_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    if response_headers.get("transfer-encoding") == "chunked":
        payload = _dechunk(payload)
    return RawResponse(int(status_line.split()[1]), response_headers, payload)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return bytes(out)
