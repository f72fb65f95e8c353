"""WHIP end to end into the real node: LiveManager, the transcode worker process and the HLS origin.

The node app is built with ``broadcaster.app.create_app`` and the WHIP routes
are mounted on it the way the node is meant to (``add_whip_routes(app, lambda:
app[LIVE], ...)``), served on 127.0.0.1; aiortc publishes a moving pattern and
a tone with ICE on loopback only.  The HLS output must be playable (playlists
parse, ffprobe reads segments with both streams) and the broadcast must follow
the same reconnect grace as RTMP after DELETE.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import m3u8
import pytest
from aiohttp import ClientSession, web

from broadcaster.app import create_app
from broadcaster.config import NodeConfig
from broadcaster.keys import LIVE
from ingest.media import MediaKind, MediaUnit
from ingest.source import IngestHub, PublishSink
from ingest.whip import WHIP_SESSIONS
from tests.support.whip_client import WhipClient, WhipClientError
from tests.support.synthetic import PatternVideoTrack, ToneAudioTrack
from tests.support.whip import make_offer
from tests.support.node import free_port

pytestmark = pytest.mark.e2e

ADMIN = "admin_whip_e2e_token_0123"


@dataclass
class TeeSink:
    """Passes everything to the node's sink and keeps the units, to compare HLS with what went in."""

    inner: PublishSink
    units: list[MediaUnit] = field(default_factory=list)

    def on_metadata(self, metadata: Mapping[str, object]) -> None:
        self.inner.on_metadata(metadata)

    def on_unit(self, unit: MediaUnit) -> None:
        self.units.append(unit)
        self.inner.on_unit(unit)

    async def close(self, reason: str) -> None:
        await self.inner.close(reason)


class TeeHub:
    """Wraps the node's own LiveManager.open_publish (which WHIP and RTMP both call) to keep the units."""

    def __init__(self, hub: IngestHub) -> None:
        self._open_publish = hub.open_publish
        self.sinks: list[TeeSink] = []
        hub.open_publish = self.open_publish  # type: ignore[method-assign]

    async def open_publish(self, stream_key: str, *, protocol: str, remote: str,
                           disconnect: Callable[[], None] | None = None) -> TeeSink:
        sink = TeeSink(await self._open_publish(stream_key, protocol=protocol, remote=remote,
                                                disconnect=disconnect))
        self.sinks.append(sink)
        return sink


@dataclass
class Node:
    base: str
    app: web.Application
    hub: TeeHub
    http: ClientSession

    async def api(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        async with self.http.request(method, self.base + path, json=body,
                                     headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            return resp.status, await resp.json()

    async def wait_status(self, broadcast_id: str, wanted: str, timeout: float = 30) -> dict:
        async def poll() -> dict:
            while True:
                status, doc = await self.api("GET", f"/api/broadcasts/{broadcast_id}")
                assert status == 200, doc
                if doc["status"] == wanted:
                    return doc
                await asyncio.sleep(0.1)
        return await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    config = NodeConfig(host="127.0.0.1", http_port=0, rtmp_port=free_port(), data_dir=tmp_path / "data",
                        admin_token=ADMIN, reconnect_grace=3, segment_target=1.0, ladder="source,240p",
                        ice_host=("127.0.0.1",), node_id="whip-e2e")
    app = create_app(config)
    assert WHIP_SESSIONS in app, "the node mounts WHIP itself"
    runner = web.AppRunner(app)
    await runner.setup()
    hub = TeeHub(app[LIVE])
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    async with ClientSession() as http:
        try:
            yield Node(f"http://127.0.0.1:{runner.addresses[0][1]}", app, hub, http)
        finally:
            await runner.cleanup()
    assert app[WHIP_SESSIONS].peer_connections == 0


def ffprobe_streams(ffprobe: str, path: Path) -> dict:
    out = subprocess.run([ffprobe, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, check=True, timeout=30)
    return json.loads(out.stdout)


def first_segment_streams(ffprobe: str, media_path: Path, media: m3u8.M3U8, tmp: Path) -> dict[str, str]:
    """codec_type -> codec_name of a playlist's first segment (behind its init section when fMP4)."""
    segment = media.segments[0]
    path = media_path.parent / segment.uri
    if segment.init_section is not None:
        joined = tmp / f"{media_path.parent.name}-first.mp4"
        joined.write_bytes((media_path.parent / segment.init_section.uri).read_bytes() + path.read_bytes())
        path = joined
    info = ffprobe_streams(ffprobe, path)
    return {s["codec_type"]: s["codec_name"] for s in info["streams"]}


async def test_whip_publish_becomes_playable_hls_and_ends_after_grace(node: Node, ffprobe: str,
                                                                      tmp_path: Path) -> None:
    status, broadcast = await node.api("POST", "/api/broadcasts", {"title": "whip", "visibility": "public"})
    assert status == 201, broadcast
    bid, key = broadcast["id"], broadcast["stream_key"]
    assert broadcast["status"] == "idle"
    video, audio = PatternVideoTrack(320, 240), ToneAudioTrack()
    client = WhipClient(f"{node.base}/whip/{bid}", key)
    try:
        await client.publish([video, audio])
        live = await node.wait_status(bid, "live", 10)
        assert live["status"] == "live"
        await asyncio.sleep(10)
        _, doc = await node.api("GET", f"/api/broadcasts/{bid}")
        assert doc["live"]["protocol"] == "whip"
        assert (doc["live"]["width"], doc["live"]["height"]) == (320, 240)
        assert doc["live"]["video_codec"] == "h264" and doc["live"]["audio_codec"] == "aac"
        assert await client.delete() == 200
    finally:
        await client.close()
    await node.wait_status(bid, "reconnecting", 10)
    await node.wait_status(bid, "ended", 20)

    units = node.hub.sinks[0].units
    video_units = [u for u in units if u.kind is MediaKind.VIDEO and not u.config]
    received = (video_units[-1].dts - video_units[0].dts) / 1000 + 1 / 30

    hls = Path(node.app[LIVE]._config.hls_dir) / bid  # noqa: SLF001 - where the node writes
    master = m3u8.loads((hls / "master.m3u8").read_text())
    assert master.is_variant and master.playlists
    for variant in master.playlists:
        media_path = hls / variant.uri
        media = m3u8.loads(media_path.read_text())
        assert media.is_endlist, variant.uri
        total = sum(s.duration for s in media.segments)
        assert abs(total - received) <= 0.1 + 1 / 30, (variant.uri, total, received)
        kinds = first_segment_streams(ffprobe, media_path, media, tmp_path)
        if master.media:  # LL-HLS: video-only variants + the shared audio rendition
            assert kinds == {"video": "h264"}, (variant.uri, kinds)
        else:
            assert kinds == {"video": "h264", "audio": "aac"}, (variant.uri, kinds)
    for rendition in master.media:
        audio_path = hls / rendition.uri
        kinds = first_segment_streams(ffprobe, audio_path, m3u8.loads(audio_path.read_text()), tmp_path)
        assert kinds == {"audio": "aac"}, kinds


async def test_one_source_at_a_time_rtmp_and_whip_refuse_each_other(node: Node, ffmpeg: str) -> None:
    rtmp_port = node.app[LIVE]._config.rtmp_port  # noqa: SLF001
    _, first = await node.api("POST", "/api/broadcasts", {"title": "rtmp first", "visibility": "public"})
    rtmp = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f", "lavfi", "-i",
        "testsrc2=size=160x120:rate=15", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "8",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv",
        f"rtmp://127.0.0.1:{rtmp_port}/live/{first['stream_key']}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    client = WhipClient(f"{node.base}/whip/{first['id']}", first["stream_key"])
    try:
        await node.wait_status(first["id"], "live", 15)
        with pytest.raises(WhipClientError) as info:
            await client.publish([PatternVideoTrack(160, 120), ToneAudioTrack()])
        assert info.value.status == 409
        assert json.loads(info.value.body) == {"error": f"broadcast {first['id']} already has a publisher"}
    finally:
        await client.close()
        if rtmp.returncode is None:
            rtmp.kill()
        await rtmp.wait()
    assert node.app[WHIP_SESSIONS].peer_connections == 0

    # the reverse: WHIP live, an RTMP publisher is turned away (ffmpeg fails) and WHIP keeps the broadcast
    _, second = await node.api("POST", "/api/broadcasts", {"title": "whip first", "visibility": "public"})
    whip = WhipClient(f"{node.base}/whip/{second['id']}", second["stream_key"])
    try:
        await whip.publish([PatternVideoTrack(160, 120), ToneAudioTrack()])
        await node.wait_status(second["id"], "live", 10)
        refused = await asyncio.create_subprocess_exec(
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i",
            "testsrc2=size=160x120:rate=15", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/{second['stream_key']}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        assert await asyncio.wait_for(refused.wait(), 20) != 0
        async with node.http.get(node.base + "/metrics") as resp:
            metrics = await resp.text()
        assert 'onair_publish_refused_total{protocol="rtmp",reason="already_live"} 1.0' in metrics
        assert 'onair_publish_refused_total{protocol="whip",reason="already_live"} 1.0' in metrics
        _, doc = await node.api("GET", f"/api/broadcasts/{second['id']}")
        assert doc["status"] == "live"
        assert await whip.delete() == 200
    finally:
        await whip.close()


async def test_wrong_keys_are_refused_before_any_peer_connection_while_a_publisher_goes_live(node: Node) -> None:
    _, broadcast = await node.api("POST", "/api/broadcasts", {"title": "flooded", "visibility": "public"})
    bid, key = broadcast["id"], broadcast["stream_key"]
    wrong = key[:-6] + ("AAAAAA" if not key.endswith("AAAAAA") else "BBBBBB")  # right broadcast, wrong secret
    offer = await make_offer()
    sessions = node.app[WHIP_SESSIONS]
    created_before = sessions.peer_connections_created

    async def wrong_offer() -> tuple[int, dict, str | None]:
        async with node.http.post(f"{node.base}/whip/{bid}", data=offer.encode(),
                                  headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {wrong}"}) as r:
            return r.status, await r.json(), r.headers.get("WWW-Authenticate")

    publisher = WhipClient(f"{node.base}/whip/{bid}", key)
    try:
        # 24 wrong offers at once, and the real publisher in the middle of them
        *refusals, _ = await asyncio.gather(*(wrong_offer() for _ in range(24)),
                                            publisher.publish([PatternVideoTrack(160, 120), ToneAudioTrack()]))
        assert refusals == [(401, {"error": "unknown stream key"}, 'Bearer realm="whip"')] * 24
        assert sessions.peer_connections_created - created_before == 1  # the publisher's, and no other
        await node.wait_status(bid, "live", 15)
        async with node.http.get(node.base + "/metrics") as resp:
            metrics = await resp.text()
        assert 'onair_publish_refused_total{protocol="whip",reason="bad_key"} 24.0' in metrics
        assert await publisher.delete() == 200
    finally:
        await publisher.close()


async def test_rotating_the_key_ends_the_whip_publish_within_a_second(node: Node) -> None:
    _, broadcast = await node.api("POST", "/api/broadcasts", {"title": "rotate", "visibility": "public"})
    bid, key = broadcast["id"], broadcast["stream_key"]
    publisher = WhipClient(f"{node.base}/whip/{bid}", key)
    try:
        await publisher.publish([PatternVideoTrack(160, 120), ToneAudioTrack()])
        await node.wait_status(bid, "live", 15)
        status, rotated = await node.api("POST", f"/api/broadcasts/{bid}/rotate-key")
        answered = time.monotonic()
        assert status == 200 and rotated["stream_key"] != key
        await node.wait_status(bid, "reconnecting", 5)
        gone = time.monotonic() - answered
        assert gone < 1.0, f"publisher still on after {gone:.2f} s"
        # the session is over and its peer connection closed (what the publisher sends goes nowhere)
        await asyncio.wait_for(_until(lambda: node.app[WHIP_SESSIONS].count == 0
                                      and node.app[WHIP_SESSIONS].peer_connections == 0), 5)
        assert node.hub.sinks[-1].inner.closed
        # the old key cannot publish again
        with pytest.raises(WhipClientError) as info:
            await WhipClient(f"{node.base}/whip/{bid}", key).publish([PatternVideoTrack(160, 120)])
        assert info.value.status == 401
    finally:
        await publisher.close()


async def test_a_key_changed_without_an_announcement_is_caught_by_the_periodic_check(node: Node) -> None:
    from dataclasses import replace

    from broadcaster.keys import STORE
    from broadcaster.registry import new_stream_key

    _, broadcast = await node.api("POST", "/api/broadcasts", {"title": "quiet rotate", "visibility": "public"})
    bid = broadcast["id"]
    publisher = WhipClient(f"{node.base}/whip/{bid}", broadcast["stream_key"])
    try:
        await publisher.publish([PatternVideoTrack(160, 120), ToneAudioTrack()])
        await node.wait_status(bid, "live", 15)
        store = node.app[STORE]  # as another node would, with the announcement lost on the way
        await store.put(replace(await store.get(bid), stream_key=new_stream_key(bid)))
        await node.wait_status(bid, "reconnecting", 3)  # the once-a-second check
    finally:
        await publisher.close()


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.05)


# --- the go-live page in headless Chromium -------------------------------------------------------
#
# Chromium gathers no loopback candidates by default and would otherwise use the machine's own
# interface address, which no test may send to.  So the whole scenario (node + Chromium) runs in a
# fresh network namespace that has only ``lo`` (``unshare -rn``), with Chromium told to use loopback
# (``--allow-loopback-in-peer-connection``) and the node's ICE host set to 127.0.0.1.

CHROMIUM = "/usr/bin/chromium"


async def poll(page, expression: str, timeout: float) -> None:
    """Wait for a JS expression to be truthy (page.wait_for_function evaluates strings, which the CSP forbids)."""
    async def loop() -> None:
        while not await page.evaluate(expression):
            await asyncio.sleep(0.1)
    await asyncio.wait_for(loop(), timeout)


async def golive_scenario(tmp: Path) -> dict:
    from playwright.async_api import async_playwright

    config = NodeConfig(host="127.0.0.1", http_port=0, rtmp_port=free_port(), data_dir=tmp / "data",
                        admin_token=ADMIN, reconnect_grace=3, segment_target=1.0, ladder="source",
                        ice_host=("127.0.0.1",), node_id="whip-browser")
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    result: dict = {}
    try:
        async with ClientSession() as http:
            node = Node(f"http://127.0.0.1:{runner.addresses[0][1]}", app, TeeHub(app[LIVE]), http)
            status, broadcast = await node.api("POST", "/api/broadcasts", {"title": "browser", "visibility": "public"})
            assert status == 201, broadcast
            bid = broadcast["id"]
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=[
                    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
                    "--autoplay-policy=no-user-gesture-required"])
                try:
                    context = await browser.new_context()
                    golive = await context.new_page()
                    # a wrong key first: the page says why it could not go live
                    await golive.goto(f"{node.base}/golive/{bid}#key=live_{bid}_wrong")
                    await golive.click("#go-live")
                    await poll(golive, "window.onairGoLive.state === 'error'", 20)
                    result["wrong_key_status"] = await golive.text_content("#status")
                    await golive.fill("#stream-key", broadcast["stream_key"])
                    await golive.click("#go-live")
                    await poll(golive, "['live', 'error'].includes(window.onairGoLive.state)", 20)
                    result["golive_state"] = await golive.evaluate("window.onairGoLive.state")
                    result["golive_reason"] = await golive.evaluate("window.onairGoLive.reason")
                    result["status_text"] = await golive.text_content("#status")
                    if result["golive_state"] != "live":
                        return result
                    result["api_status"] = (await node.wait_status(bid, "live", 10))["status"]
                    watch = await context.new_page()
                    await watch.goto(f"{node.base}/watch/{bid}")
                    await poll(watch, "document.getElementById('video').currentTime > 1.0", 30)
                    result["watch_current_time"] = await watch.evaluate("document.getElementById('video').currentTime")
                    await golive.click("#stop")
                    await poll(golive, "window.onairGoLive.state === 'stopped'", 10)
                    result["after_stop"] = (await node.wait_status(bid, "reconnecting", 10))["status"]
                    result["peer_connections_after_stop"] = app[WHIP_SESSIONS].peer_connections
                finally:
                    await browser.close()
    finally:
        await runner.cleanup()
    return result


@pytest.mark.browser
async def test_golive_page_in_chromium_goes_live_and_plays(tmp_path: Path) -> None:
    import shutil

    if not (shutil.which("unshare") and Path(CHROMIUM).exists()):
        pytest.skip("needs unshare and /usr/bin/chromium")
    root = Path(__file__).resolve().parents[2]
    proc = await asyncio.create_subprocess_exec(
        "unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$0" -X faulthandler -m tests.ingest.test_whip_e2e "$1"',
        sys.executable, str(tmp_path), cwd=root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["wrong_key_status"] == "Error: unknown stream key (401)"
    assert result["golive_state"] == "live", result
    assert result["status_text"] == "You are live."
    assert result["api_status"] == "live"
    assert result["watch_current_time"] > 1.0
    assert result["after_stop"] == "reconnecting"
    assert result["peer_connections_after_stop"] == 0


if __name__ == "__main__":
    print(json.dumps(asyncio.run(golive_scenario(Path(sys.argv[1])))))


async def test_vanished_whip_publisher_ends_the_broadcast_within_30_s(node: Node) -> None:
    """No DELETE, the network just goes: ICE/DTLS/media timeout, then the (short) grace, then ended."""
    status, broadcast = await node.api("POST", "/api/broadcasts", {"title": "vanish", "visibility": "public"})
    assert status == 201, broadcast
    bid = broadcast["id"]
    client = WhipClient(f"{node.base}/whip/{bid}", broadcast["stream_key"])
    try:
        await client.publish([PatternVideoTrack(160, 120), ToneAudioTrack()])
        await node.wait_status(bid, "live", 10)
        await asyncio.sleep(3)
        loop = asyncio.get_running_loop()
        vanished_at = loop.time()
        client.vanish()
        await node.wait_status(bid, "ended", 30)
        assert loop.time() - vanished_at <= 30
    finally:
        await client.close()
    media = m3u8.loads((Path(node.app[LIVE]._config.hls_dir) / bid / "source" / "index.m3u8").read_text())  # noqa: SLF001
    assert media.is_endlist and media.segments
    assert node.app[WHIP_SESSIONS].peer_connections == 0
