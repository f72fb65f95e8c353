"""Caps on a real node (onair serve): RTMP connections that never publish hold little and are closed
in time; per-address and per-node RTMP caps, from several loopback addresses, while a real ffmpeg
publisher goes on.  (HTTP, WebSocket and held LL-HLS caps: tests/broadcaster/test_caps.py.)"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from tests.support.publish import ffmpeg_publish
from tests.support.rtmp_raw import RawRtmp

pytestmark = pytest.mark.e2e

#: a message header (fmt 0, chunk stream 3, command) announcing 16 MiB - 1 bytes
HUGE_HEADER = b"\x03" + bytes(3) + b"\xff\xff\xff" + b"\x14" + bytes(4)
#: one within the pre-accept bound (8 KiB by default): its body then trickles
SMALL_HEADER = b"\x03" + bytes(3) + (8000).to_bytes(3, "big") + b"\x14" + bytes(4)
ACCEPT_TIMEOUT = 2.0


def rss_kib(pid: int) -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))  # type: ignore[union-attr]


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


class Trickler(threading.Thread):
    """Handshake, one message header, then a byte every 0.2 s until the server closes the connection."""

    def __init__(self, port: int, header: bytes) -> None:
        super().__init__(daemon=True)
        self.client = RawRtmp(port)
        self.header = header
        self.sent_at = 0.0
        self.closed_after: float | None = None

    def run(self) -> None:
        self.client.handshake()
        self.client.send(self.header)
        self.sent_at = time.monotonic()
        try:
            while time.monotonic() - self.sent_at < 30:
                self.client.send(b"\x00")
                time.sleep(0.2)
        except OSError:
            self.closed_after = time.monotonic() - self.sent_at
        finally:
            self.client.close()


def test_rtmp_clients_that_never_publish_hold_little_and_are_closed_in_time(node_factory) -> None:
    node = node_factory(rtmp_accept_timeout=ACCEPT_TIMEOUT)
    assert node.proc is not None
    before = rss_kib(node.proc.pid)
    huge = [Trickler(node.rtmp_port, HUGE_HEADER) for _ in range(4)]
    small = [Trickler(node.rtmp_port, SMALL_HEADER) for _ in range(4)]
    for t in huge + small:
        t.start()
    peak = before
    while any(t.is_alive() for t in huge + small):
        peak = max(peak, rss_kib(node.proc.pid))
        time.sleep(0.05)
    after = rss_kib(node.proc.pid)
    assert max(peak, after) - before < 5 * 1024, (before, peak, after)
    # a 16 MiB header is refused the moment it is read; a small one trickling, at the accept deadline
    assert all(t.closed_after is not None and t.closed_after < 1.0 for t in huge), [t.closed_after for t in huge]
    for t in small:
        assert t.closed_after is not None and ACCEPT_TIMEOUT - 1.0 < t.closed_after < ACCEPT_TIMEOUT + 1.5, \
            t.closed_after
    metrics = node.metrics()
    assert metric(metrics, 'onair_publish_refused_total{protocol="rtmp",reason="message_too_large"}') == 4
    assert metric(metrics, 'onair_publish_refused_total{protocol="rtmp",reason="accept_timeout"}') == 4
    log = node.log()
    assert "exceeds the limit of 8192 bytes before the publish is accepted" in log
    assert f"no accepted publish within {ACCEPT_TIMEOUT:g} s of connecting" in log


def _held(port: int, source: str) -> RawRtmp:
    """A client that completed the handshake (so the node admitted it) and sits."""
    client = RawRtmp(port, source=source)
    client.handshake()
    return client


def test_rtmp_connections_are_capped_per_address_and_per_node_and_a_publisher_goes_on(node_factory) -> None:
    node = node_factory(rtmp_max_connections=5, rtmp_max_connections_per_address=2, rtmp_accept_timeout=60)
    held = [_held(node.rtmp_port, "127.0.0.2"), _held(node.rtmp_port, "127.0.0.2")]
    refused = RawRtmp(node.rtmp_port, source="127.0.0.2")
    assert refused.closed_by_server(timeout=2)  # closed at once, no handshake answer
    refused.close()
    held += [_held(node.rtmp_port, "127.0.0.3"), _held(node.rtmp_port, "127.0.0.3")]
    broadcast = node.create_broadcast()
    publisher = ffmpeg_publish(node.rtmp_url(broadcast["stream_key"]), 8)  # from 127.0.0.1: the fifth
    try:
        node.wait_media(broadcast["id"])
        full = RawRtmp(node.rtmp_port, source="127.0.0.4")
        assert full.closed_by_server(timeout=2)
        full.close()
        metrics = node.metrics()
        assert metric(metrics, 'onair_connections_refused_total{kind="rtmp",reason="address_limit"}') == 1
        assert metric(metrics, 'onair_connections_refused_total{kind="rtmp",reason="node_limit"}') == 1
        assert metric(metrics, 'onair_connections_open{kind="rtmp"}') == 5
        # one of the held clients leaves: a new client gets its place
        held.pop().close()
        deadline = time.monotonic() + 5
        while metric(node.metrics(), 'onair_connections_open{kind="rtmp"}') != 4:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        held.append(_held(node.rtmp_port, "127.0.0.4"))
        assert node.broadcast(broadcast["id"])["status"] == "live"
    finally:
        publisher.kill()
        publisher.wait()
        for client in held:
            client.close()
