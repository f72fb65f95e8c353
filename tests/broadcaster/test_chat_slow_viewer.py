"""A viewer that stops reading is dropped before its send buffer passes the bound;
the others keep receiving everything."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket

from broadcaster.chat.relay import new_comment
from tests.broadcaster.chat_support import ChatNode, bus_kind, chat_node, wait_for  # noqa: F401


def _masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


async def _stalled_viewer(port: int, broadcast_id: str) -> socket.socket:
    """A raw WebSocket client with a tiny receive buffer that never reads after its hello."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (f"GET /ws/{broadcast_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    await loop.sock_sendall(sock, _masked_text(json.dumps({"type": "hello", "name": "slow"}).encode()))
    return sock


async def test_stalled_viewer_is_dropped_before_the_bound(chat_node: ChatNode) -> None:
    relay = chat_node.relay
    bound = relay.settings.send_buffer_limit
    assert bound == 1 << 20  # the documented bound
    b = await chat_node.create_broadcast()
    healthy = await chat_node.viewer(b["id"], name="healthy")
    slow = await _stalled_viewer(chat_node.client.port, b["id"])
    await wait_for(lambda: len(relay.rooms[b["id"]].viewers) == 2, 5)
    text = "y" * 480
    sent = 0
    while relay.metrics.slow_dropped._value.get() == 0:
        for _ in range(100):
            await relay.host.publish_comment(b["id"], new_comment({"id": "v_host", "name": "host"}, text, False))
            sent += 1
        # drain the healthy viewer as we go, like a real client
        await healthy.comments_until(sent, timeout=10)
        assert sent < 20_000, "the stalled viewer was never dropped"
    # dropped before its buffer passed the bound (checked before every write)
    assert relay.metrics.max_buffer_seen <= bound
    assert len(relay.rooms[b["id"]].viewers) == 1
    # the others keep receiving
    for _ in range(50):
        await relay.host.publish_comment(b["id"], new_comment({"id": "v_host", "name": "host"}, "after", False))
    got = await healthy.comments_until(sent + 50, timeout=10)
    assert [c["text"] for c in got[-50:]] == ["after"] * 50
    assert [c["seq"] for c in got] == sorted(c["seq"] for c in got)
    # and the stalled socket is closed by the server (close 4000 queued, then aborted)
    loop = asyncio.get_running_loop()
    closed = False
    received = b""
    for _ in range(10_000):
        try:
            data = await asyncio.wait_for(loop.sock_recv(slow, 65536), 5)
        except ConnectionResetError:
            closed = True
            break
        if not data:
            closed = True
            break
        received += data[-8:]
    slow.close()
    assert closed
