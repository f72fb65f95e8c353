"""Bad publishers and crashing workers must not hurt a healthy broadcast on the same node."""

from __future__ import annotations

import os
import signal
import time

import m3u8
import pytest

from tests.support.hls import fetch
from tests.support.publish import ffmpeg_publish
from tests.support.rtmp_raw import RawRtmp, amf0_number, amf0_string, chunk

pytestmark = pytest.mark.e2e


def _nested_amf(depth: int) -> bytes:
    # an object holding an object holding ... (never terminated at the bottom on purpose is not needed)
    return b"\x03" + (b"\x00\x01a\x03" * depth) + b"\x00\x00\x09" * (depth + 1)


MALFORMED = {
    "garbage handshake": lambda port: _send_raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(2000)),
    "truncated chunk": lambda port: _after_handshake(port, chunk(3, 20, amf0_string("connect"))[:9], close=True),
    "chunk size 0": lambda port: _after_handshake(port, chunk(2, 1, (0).to_bytes(4, "big"))),
    "chunk size 2^31": lambda port: _after_handshake(port, chunk(2, 1, (1 << 31).to_bytes(4, "big"))),
    "AMF0 nested 10000 deep": lambda port: _after_handshake(
        port, chunk(3, 20, amf0_string("connect") + amf0_number(1) + _nested_amf(10_000))),
    # RTMP's length field has 3 bytes: 16,777,215 is the largest length a header can claim (50 MB cannot
    # be encoded); it is far above onair's message bound and must be refused when the header arrives.
    "huge (16 MB) message length": lambda port: _after_handshake(port, chunk(3, 20, b"\x02\x00", length=0xFFFFFF)),
}


def _send_raw(port: int, data: bytes) -> bool:
    client = RawRtmp(port)
    try:
        client.send(data)
        return client.closed_by_server()
    finally:
        client.close()


def _after_handshake(port: int, data: bytes, close: bool = False) -> bool:
    client = RawRtmp(port)
    try:
        client.handshake()
        client.send(data)
        if close:
            client.sock.shutdown(1)  # half-close: the server sees EOF in the middle of a chunk
        return client.closed_by_server()
    finally:
        client.close()


def test_malformed_publishers_are_dropped_while_a_healthy_publish_continues(node, ffprobe):
    healthy = node.create_broadcast("healthy")
    publisher = ffmpeg_publish(node.rtmp_url(healthy["stream_key"]), seconds=10)
    node.wait_status(healthy["id"], "live", timeout=15)
    for name, attack in MALFORMED.items():
        assert attack(node.rtmp_port), f"server did not close the connection after: {name}"
    assert node.alive()
    assert node.broadcast(healthy["id"])["status"] == "live"
    assert publisher.wait(timeout=40) == 0, publisher.stderr.read().decode()
    node.wait_status(healthy["id"], "reconnecting", timeout=10)
    assert node.request("POST", f"/api/broadcasts/{healthy['id']}/end")[0] == 200
    playlist = m3u8.loads(fetch(f"{node.base}/hls/{healthy['id']}/source/index.m3u8").decode())
    assert abs(sum(s.duration for s in playlist.segments) - 10.0) <= 0.1 * len(playlist.segments)
    log = node.log()
    # one log line per refused connection, naming why
    assert log.count("onair.rtmp") >= len(MALFORMED), log[-4000:]


def test_killing_one_workers_process_leaves_node_and_other_broadcast_alone(node, ffprobe):
    victim = node.create_broadcast("victim")
    bystander = node.create_broadcast("bystander")
    pv = ffmpeg_publish(node.rtmp_url(victim["stream_key"]), seconds=12)
    pb = ffmpeg_publish(node.rtmp_url(bystander["stream_key"]), seconds=12)
    node.wait_status(victim["id"], "live", timeout=15)
    node.wait_status(bystander["id"], "live", timeout=15)
    playlist_url = f"{node.base}/hls/{victim['id']}/source/index.m3u8"
    _wait_for_segments(playlist_url, 2)
    pid = node.broadcast(victim["id"])["live"]["transcoder"]["worker_pid"]
    bystander_pid = node.broadcast(bystander["id"])["live"]["transcoder"]["worker_pid"]
    assert pid and pid != bystander_pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        transcoder = node.broadcast(victim["id"])["live"]["transcoder"]
        if transcoder["worker_pid"] not in (None, pid) and transcoder["restarts"] >= 1:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the killed worker was not restarted")
    assert pv.wait(timeout=40) == 0 and pb.wait(timeout=40) == 0
    assert node.alive()
    for doc in (victim, bystander):
        node.wait_status(doc["id"], "reconnecting", timeout=10)
        assert node.request("POST", f"/api/broadcasts/{doc['id']}/end")[0] == 200
    victim_playlist = m3u8.loads(fetch(playlist_url).decode())
    assert any(s.discontinuity for s in victim_playlist.segments)
    killed_at = next(i for i, s in enumerate(victim_playlist.segments) if s.discontinuity)
    assert len(victim_playlist.segments) > killed_at + 1, "HLS did not continue after the restart"
    bystander_playlist = m3u8.loads(fetch(f"{node.base}/hls/{bystander['id']}/source/index.m3u8").decode())
    assert not any(s.discontinuity for s in bystander_playlist.segments)
    assert abs(sum(s.duration for s in bystander_playlist.segments) - 12.0) <= 0.1 * len(bystander_playlist.segments)


def _wait_for_segments(url: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(m3u8.loads(fetch(url).decode()).segments) >= count:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never had {count} segments")
