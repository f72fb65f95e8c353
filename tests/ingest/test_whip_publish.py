"""aiortc as a WHIP client publishing a moving pattern and a tone over loopback ICE into a recording hub.

Both peers gather ICE candidates on 127.0.0.1 only.  The units the hub
receives are written to an FLV file and read back with ffprobe, so the test
proves the re-encoded H.264/AAC is decodable, not only that bytes arrived.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from ingest import flv
from ingest.media import MediaKind, MediaUnit
from ingest.whip import WHIP_SESSIONS, WhipOptions, WhipSessions, add_whip_routes
from tests.support.whip_client import WhipClient, WhipClientError
from tests.support.synthetic import PatternVideoTrack, ToneAudioTrack
from tests.support.whip_hub import RecordingHub, RecordingSink

KEY = "live_b1_secret"


@dataclass
class WhipNode:
    url: str
    hub: RecordingHub
    sessions: WhipSessions


@pytest.fixture
async def whip_node() -> AsyncIterator[WhipNode]:
    hub = RecordingHub({"b1": KEY})
    app = web.Application()
    add_whip_routes(app, hub, WhipOptions(ice_hosts=("127.0.0.1",)))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield WhipNode(f"http://127.0.0.1:{port}/whip/b1", hub, app[WHIP_SESSIONS])
    finally:
        await runner.cleanup()
    assert app[WHIP_SESSIONS].peer_connections == 0


async def wait_for_units(sink: RecordingSink, timeout: float = 15.0) -> None:
    async def both() -> None:
        while not (sink.media(MediaKind.VIDEO) and sink.media(MediaKind.AUDIO)):
            await asyncio.sleep(0.05)
    await asyncio.wait_for(both(), timeout)


def probe_flv(units: list[MediaUnit], path: Path, ffprobe: str) -> dict:
    ordered = sorted(units, key=lambda u: (u.dts, not u.config))
    path.write_bytes(flv.file_header() + b"".join(flv.encode_unit(u) for u in ordered))
    out = subprocess.run([ffprobe, "-v", "error", "-count_frames", "-show_streams", "-show_format",
                          "-of", "json", str(path)], capture_output=True, check=True, timeout=60)
    return json.loads(out.stdout)


def check_stream(units: list[MediaUnit], sent_seconds: float) -> None:
    for kind in MediaKind:
        configs = [u for u in units if u.kind is kind and u.config]
        media = [u for u in units if u.kind is kind and not u.config]
        assert len(configs) == 1, kind
        assert configs[0].dts <= media[0].dts
        dts = [u.dts for u in media]
        assert dts == sorted(dts) and len(set(dts)) == len(dts), f"{kind} timestamps not strictly increasing"
        span = (dts[-1] - dts[0]) / 1000
        # what arrived before DELETE: everything sent minus what was in flight / not yet decodable
        assert sent_seconds - 1.0 <= span <= sent_seconds + 0.1, (kind, span, sent_seconds)
    video = [u for u in units if u.kind is MediaKind.VIDEO and not u.config]
    audio = [u for u in units if u.kind is MediaKind.AUDIO and not u.config]
    assert video[0].keyframe, "the first video unit must be a keyframe"
    keyframes = [u.dts for u in video if u.keyframe]
    gaps = [b - a for a, b in zip(keyframes, keyframes[1:])]
    assert gaps and all(1900 <= g <= 2100 for g in gaps), gaps  # one IDR per 2 s of media time
    # A/V on one clock: they start and end together
    assert abs(video[0].dts - audio[0].dts) <= 250
    assert abs(video[-1].dts - audio[-1].dts) <= 250


@pytest.mark.parametrize("codec", ["H264", "VP8"])
async def test_publish_pattern_and_tone(whip_node: WhipNode, codec: str, tmp_path: Path, ffprobe: str) -> None:
    video, audio = PatternVideoTrack(320, 240), ToneAudioTrack()
    client = WhipClient(whip_node.url, KEY, video_codec=codec)
    try:
        await client.publish([video, audio])
        assert codec in client.pc.localDescription.sdp
        offered = [line for line in client.pc.localDescription.sdp.splitlines() if line.startswith("a=candidate:")]
        assert offered and all(" 127.0.0.1 " in line for line in offered)
        await asyncio.wait_for(whip_node.hub.published.wait(), 5)
        sink = whip_node.hub.sinks[0]
        await wait_for_units(sink)
        start = video.frames_sent
        await asyncio.sleep(4.5)
        assert await client.delete() == 200
        sent = video.frames_sent / 30
    finally:
        await client.close()
    assert sink.close_reason == "DELETE"
    assert sink.protocol == "whip" and sink.remote == "127.0.0.1"
    assert video.frames_sent - start > 100  # it really ran for seconds
    assert sink.metadata[0]["width"] == 320 and sink.metadata[0]["height"] == 240
    check_stream(sink.units, sent)
    assert whip_node.sessions.peer_connections == 0 and whip_node.sessions.count == 0

    info = probe_flv(sink.units, tmp_path / "out.flv", ffprobe)
    streams = {s["codec_type"]: s for s in info["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (320, 240)
    assert int(streams["video"]["nb_read_frames"]) == len(sink.media(MediaKind.VIDEO))
    assert streams["audio"]["codec_name"] == "aac"
    assert int(streams["audio"]["sample_rate"]) == 48000 and streams["audio"]["channels"] == 2
    assert int(streams["audio"]["nb_read_frames"]) == len(sink.media(MediaKind.AUDIO))


async def test_second_publisher_gets_409_and_hub_disconnect_ends_session(whip_node: WhipNode) -> None:
    first = WhipClient(whip_node.url, KEY)
    second = WhipClient(whip_node.url, KEY)
    try:
        await first.publish([PatternVideoTrack(160, 120), ToneAudioTrack()])
        with pytest.raises(WhipClientError) as info:
            await second.publish([PatternVideoTrack(160, 120), ToneAudioTrack()])
        assert info.value.status == 409
        assert json.loads(info.value.body) == {"error": "broadcast b1 already has a publisher"}
        sink = whip_node.hub.sinks[0]
        await wait_for_units(sink)
        # the node drops the publisher (e.g. the host ended the broadcast)
        assert sink.disconnect is not None
        sink.disconnect()
        await asyncio.wait_for(sink.closed.wait(), 10)
        assert sink.close_reason == "disconnected by node"
        assert whip_node.sessions.peer_connections == 0
    finally:
        await first.close()
        await second.close()


async def test_vanished_publisher_closes_the_sink_within_30_s(whip_node: WhipNode) -> None:
    client = WhipClient(whip_node.url, KEY)
    try:
        await client.publish([PatternVideoTrack(160, 120), ToneAudioTrack()])
        sink = whip_node.hub.sinks[0]
        await wait_for_units(sink)
        client.vanish()  # network gone: no DELETE, no DTLS close, nothing more arrives
        # the acceptance bound: detected (media timeout, else ICE consent) and closed within 30 s
        await asyncio.wait_for(sink.closed.wait(), 30)
        assert sink.close_reason == "network"
        assert whip_node.sessions.peer_connections == 0 and whip_node.sessions.count == 0
    finally:
        await client.close()
