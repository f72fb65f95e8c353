"""Simulcast end to end: a real onair node forwarding a real ffmpeg publish to real nginx-rtmp servers
(plain RTMP, and RTMPS through nginx's stream module with a test CA), plus a destination that refuses
the connection, one that dies mid-stream and comes back, and one that stops reading."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.hls import load_media_playlists
from tests.support.nginx_rtmp import NginxRtmp, ended_copy
from tests.support.node import NodeProcess, free_port
from tests.support.publish import ffmpeg_publish
from tests.support.tls import self_signed

PUBLISH_SECONDS = 20
KILL_PUBLISH_SECONDS = 14


def _probe(ffprobe: str, playlist: Path) -> tuple[float, set[str]]:
    """(duration, codecs) ffprobe reads in nginx's HLS, read whole as a replay."""
    out = subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "json",
                          str(ended_copy(playlist))], capture_output=True, text=True, check=True, timeout=60).stdout
    doc = json.loads(out)
    return float(doc["format"]["duration"]), {s["codec_name"] for s in doc["streams"]}


def _add(node: NodeProcess, broadcast_id: str, url: str, key: str, name: str) -> dict:
    status, doc = node.request("POST", f"/api/broadcasts/{broadcast_id}/simulcast",
                               {"url": url, "stream_key": key, "name": name})
    assert status == 201, doc
    assert set(doc) >= {"id", "name", "url", "status"} and doc["name"] == name and doc["url"] == url
    assert "stream_key" not in doc and key not in json.dumps(doc)
    return doc


def _targets(node: NodeProcess, broadcast_id: str) -> dict[str, dict]:
    status, doc = node.request("GET", f"/api/broadcasts/{broadcast_id}/simulcast")
    assert status == 200, doc
    return {t["name"]: t for t in doc["targets"]}


def _wait(node: NodeProcess, broadcast_id: str, wanted: dict[str, str], timeout: float = 15) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    targets: dict[str, dict] = {}
    while time.monotonic() < deadline:
        targets = _targets(node, broadcast_id)
        if all(targets[name]["status"] == status for name, status in wanted.items()):
            return targets
        time.sleep(0.2)
    raise AssertionError(f"targets not {wanted} after {timeout} s: {targets}")


def _no_secret_anywhere(node: NodeProcess, broadcast_id: str, keys: list[str]) -> None:
    """No API answer and no log line carries a stream key (the broadcast's own key aside)."""
    answers = [node.request("GET", f"/api/broadcasts/{broadcast_id}/simulcast")[1],
               node.request("GET", f"/api/broadcasts/{broadcast_id}")[1],
               node.request("GET", "/api/broadcasts")[1],
               node.request("GET", "/metrics")[1]]
    text = "\n".join(a.decode() if isinstance(a, bytes) else json.dumps(a) for a in answers)
    log = node.log()
    for key in keys:
        assert key not in text, "a stream key in an API answer"
        assert key not in log, "a stream key in the node's log"
        assert key[:8] not in log  # not even more than the 4-character prefix the node may show


@pytest.fixture
def destinations(tmp_path: Path):
    cert, key = self_signed(tmp_path)
    plain = NginxRtmp(tmp_path / "nginx-plain")
    tls = NginxRtmp(tmp_path / "nginx-tls", tls=(cert, key))
    plain.start()
    tls.start()
    yield plain, tls, cert
    plain.stop()
    tls.stop()


def test_two_destinations_get_the_broadcast_and_a_refusing_one_retries(node_factory, destinations, ffprobe):
    plain, tls, ca = destinations
    node = node_factory(ladder="source", simulcast_ca_file=str(ca), simulcast_retry_max=2)
    broadcast = node.create_broadcast("simulcast")
    bid = broadcast["id"]
    keys = {name: secrets.token_urlsafe(24) for name in ("plain", "tls", "refusing")}
    _add(node, bid, plain.rtmp_url(), keys["plain"], "plain")
    _add(node, bid, tls.rtmps_url(), keys["tls"], "tls")
    _add(node, bid, f"rtmp://127.0.0.1:{free_port()}/live", keys["refusing"], "refusing")
    assert {t["status"] for t in _targets(node, bid).values()} == {"idle"}  # not live yet

    publisher = ffmpeg_publish(node.rtmp_url(broadcast["stream_key"]), PUBLISH_SECONDS, size="320x240")
    try:
        node.wait_status(bid, "live", timeout=15)
        targets = _wait(node, bid, {"plain": "live", "tls": "live", "refusing": "retrying"})
        assert targets["refusing"]["last_error"] == "connection refused"
        assert targets["plain"]["last_error"] is None and targets["tls"]["last_error"] is None
        time.sleep(3)
        targets = _targets(node, bid)
        assert targets["refusing"]["status"] in ("retrying", "connecting") and targets["refusing"]["retries"] >= 2
        for name in ("plain", "tls"):  # unaffected: live since they connected, media flowing
            assert targets[name]["status"] == "live" and targets[name]["connects"] == 1, targets[name]
            assert targets[name]["bitrate"] > 50_000 and targets[name]["bytes_sent"] > 0
        doc = node.broadcast(bid)  # the broadcast's own answer carries the statuses
        assert {t["name"]: t["status"] for t in doc["simulcast"]}["plain"] == "live"
        metrics = node.metrics()
        assert 'onair_simulcast_targets{status="live"} 2.0' in metrics
        assert 'onair_simulcast_transitions_total{status="retrying"}' in metrics
        assert publisher.wait(PUBLISH_SECONDS + 20) == 0, publisher.stderr.read() if publisher.stderr else ""
    finally:
        if publisher.poll() is None:
            publisher.kill()
    status, _ = node.request("POST", f"/api/broadcasts/{bid}/end")
    assert status == 200
    # ending the broadcast ended every target cleanly: nginx saw the publishers leave (deleteStream)
    for dest in (plain, tls):
        deadline = time.monotonic() + 10
        while "deleteStream" not in (dest.prefix / "error.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "deleteStream" in (dest.prefix / "error.log").read_text()
    assert {t["status"] for t in _targets(node, bid).values()} == {"idle"}

    durations = {}
    for name, dest in (("plain", plain), ("tls", tls)):
        duration, codecs = _probe(ffprobe, dest.playlist(keys[name]))
        assert codecs == {"h264", "aac"}, (name, codecs)
        durations[name] = duration
    assert abs(durations["plain"] - durations["tls"]) <= 1.0, durations
    assert PUBLISH_SECONDS - 3 <= durations["plain"] <= PUBLISH_SECONDS + 1, durations
    _no_secret_anywhere(node, bid, list(keys.values()))


def test_a_destination_killed_mid_stream_retries_and_comes_back(node_factory, tmp_path, ffprobe):
    dest = NginxRtmp(tmp_path / "nginx")
    dest.start()
    node = node_factory(ladder="source", simulcast_retry_max=2, hls_variant="mpegts")
    broadcast = node.create_broadcast("simulcast")
    bid = broadcast["id"]
    key = secrets.token_urlsafe(24)
    _add(node, bid, dest.rtmp_url(), key, "nginx")
    publisher = ffmpeg_publish(node.rtmp_url(broadcast["stream_key"]), KILL_PUBLISH_SECONDS, size="320x240")
    try:
        node.wait_status(bid, "live", timeout=15)
        _wait(node, bid, {"nginx": "live"})
        time.sleep(3)
        dest.kill()
        targets = _wait(node, bid, {"nginx": "retrying"}, timeout=10)
        assert targets["nginx"]["last_error"], targets
        time.sleep(2)
        assert _targets(node, bid)["nginx"]["status"] in ("retrying", "connecting")
        dest = NginxRtmp(tmp_path / "nginx", rtmp_port=dest.rtmp_port)  # the destination returns
        dest.start()
        targets = _wait(node, bid, {"nginx": "live"}, timeout=10)
        assert targets["nginx"]["connects"] >= 2
        sent = targets["nginx"]["bytes_sent"]
        time.sleep(2)
        assert _targets(node, bid)["nginx"]["bytes_sent"] > sent
        assert publisher.wait(PUBLISH_SECONDS + 20) == 0
    finally:
        if publisher.poll() is None:
            publisher.kill()
        node.request("POST", f"/api/broadcasts/{bid}/end")
        dest.stop()
    # onair's own HLS: every segment there, no discontinuity, as long as the publish
    for url, playlist in load_media_playlists(f"{node.base}/hls/{bid}/master.m3u8").items():
        assert playlist.is_endlist
        assert not any(s.discontinuity for s in playlist.segments), url
        total = sum(s.duration for s in playlist.segments)
        assert KILL_PUBLISH_SECONDS - 1.5 <= total <= KILL_PUBLISH_SECONDS + 1.5, (url, total)
    # the destination got the stream again after it came back
    duration, codecs = _probe(ffprobe, dest.playlist(key))
    assert codecs == {"h264", "aac"} and duration >= 3, duration
    _no_secret_anywhere(node, bid, [key])


def test_a_destination_that_stops_reading_drops_to_keyframes_and_delays_nothing_else(node_factory, tmp_path):
    slow = NginxRtmp(tmp_path / "slow")
    fine = NginxRtmp(tmp_path / "fine")
    slow.start()
    fine.start()
    node = node_factory(ladder="source", simulcast_max_lag=1, hls_variant="mpegts")
    broadcast = node.create_broadcast("simulcast")
    bid = broadcast["id"]
    _add(node, bid, slow.rtmp_url(), "slow-" + secrets.token_urlsafe(12), "slow")
    _add(node, bid, fine.rtmp_url(), "fine-" + secrets.token_urlsafe(12), "fine")
    # a high bitrate: the stopped destination's socket buffers fill within seconds
    publisher = ffmpeg_publish(node.rtmp_url(broadcast["stream_key"]), 16, size="640x360",
                               extra=["-b:v", "6M", "-minrate", "6M", "-maxrate", "6M", "-bufsize", "1M"])
    stopped: list[int] = []
    try:
        node.wait_status(bid, "live", timeout=15)
        _wait(node, bid, {"slow": "live", "fine": "live"})
        stopped = [slow.proc.pid, *_worker_pids(slow)]  # type: ignore[union-attr]
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)  # the destination stops reading
        before = _targets(node, bid)["fine"]["bytes_sent"]
        segments = node.broadcast(bid)["live"]["transcoder"]["segments_written"]
        deadline = time.monotonic() + 12
        drops = 0
        while time.monotonic() < deadline and drops == 0:
            time.sleep(0.5)
            drops = _targets(node, bid)["slow"]["queue_drops"]
        assert drops >= 1, _targets(node, bid)
        targets = _targets(node, bid)
        assert targets["fine"]["status"] == "live" and targets["fine"]["queue_drops"] == 0
        assert targets["fine"]["bytes_sent"] - before > 500_000  # the other target kept going
        assert node.broadcast(bid)["live"]["transcoder"]["segments_written"] > segments  # so did onair's HLS
        deadline = time.monotonic() + 3  # /metrics takes the figures once a second
        while _metric(node.metrics(), "onair_simulcast_queue_drops_total") < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _metric(node.metrics(), "onair_simulcast_queue_drops_total") >= 1
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        if publisher.poll() is None:
            publisher.kill()
        node.request("POST", f"/api/broadcasts/{bid}/end")
        slow.stop()
        fine.stop()


def _worker_pids(dest: NginxRtmp) -> list[int]:
    from tests.support.nginx_rtmp import _children

    assert dest.proc is not None
    return _children(dest.proc.pid)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
