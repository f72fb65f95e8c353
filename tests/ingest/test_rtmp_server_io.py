"""RtmpServer connection I/O: the idle timeout after the handshake, media that
arrives while the hub decides on a publish, and reads gathered while publishing
(the connection is a protocol that pauses reading between gathered reads)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from ingest.media import MediaKind
from ingest.rtmp import RtmpServer
from ingest.rtmp import messages as msg
from ingest.rtmp.chunk import RtmpMessage
from tests.ingest.conftest import GOOD_KEY, RawRtmpClient, RecordingHub, RecordingSink, wait_until

#: An AVC sequence header body (legacy FLV: keyframe + AVC, packet type 0) and AAC config / frame bodies.
AVC_CONFIG = bytes([0x17, 0, 0, 0, 0]) + bytes.fromhex("0164001fffe1000467640028ac01000468ee3c80")
AAC_CONFIG = bytes([0xAF, 0]) + bytes.fromhex("1190")


def aac_frame(n: int) -> bytes:
    return bytes([0xAF, 1]) + n.to_bytes(2, "big") * 40


class SlowHub(RecordingHub):
    """A hub that takes its time to accept a publish (a database lookup, say)."""

    async def open_publish(self, stream_key: str, *, protocol: str, remote: str,
                           disconnect: Callable[[], None] | None = None) -> RecordingSink:
        await asyncio.sleep(0.3)
        return await super().open_publish(stream_key, protocol=protocol, remote=remote, disconnect=disconnect)


async def test_silent_publisher_is_closed_after_idle_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onair.rtmp")
    hub = RecordingHub()
    async with RtmpServer(hub, port=0, idle_timeout=0.4) as server:
        client = await RawRtmpClient.open(server.port)
        await client.connect_and_publish(GOOD_KEY)
        assert (await client.wait_status())["code"] == "NetStream.Publish.Start"
        await client.send(RtmpMessage(4, msg.AUDIO, 1, 0, AAC_CONFIG))
        assert await client.closed_by_server()
        assert hub.refusals == [("rtmp", "idle_timeout")]
        await wait_until(lambda: hub.sinks[0].close_reasons == ["network"])
        assert "closed after 0 s without data" in caplog.text


async def test_media_sent_while_the_hub_decides_follows_the_accept_in_order() -> None:
    hub = SlowHub()
    async with RtmpServer(hub, port=0) as server:
        client = await RawRtmpClient.open(server.port)
        await client.connect_and_publish(GOOD_KEY)
        # Sent at once, before the answer: the server holds them until the hub accepted.
        await client.send(RtmpMessage(6, msg.VIDEO, 1, 0, AVC_CONFIG))
        await client.send(RtmpMessage(4, msg.AUDIO, 1, 0, AAC_CONFIG))
        for n in range(1, 6):
            await client.send(RtmpMessage(4, msg.AUDIO, 1, n * 21, aac_frame(n)))
        assert (await client.wait_status())["code"] == "NetStream.Publish.Start"
        await wait_until(lambda: bool(hub.sinks) and len(hub.sinks[0].units) == 7)
        units = hub.sinks[0].units
        assert [(u.kind, u.config, u.dts) for u in units[:2]] == [(MediaKind.VIDEO, True, 0), (MediaKind.AUDIO, True, 0)]
        assert [u.dts for u in units[2:]] == [21, 42, 63, 84, 105]
        assert [u.data for u in units[2:]] == [aac_frame(n)[2:] for n in range(1, 6)]
        await client.command("deleteStream", 9.0, None, 1.0)
        await wait_until(lambda: hub.sinks[0].close_reasons == ["deleteStream"])
        await client.close()


async def test_every_message_of_a_paced_publish_arrives_once_and_in_order() -> None:
    hub = RecordingHub()
    async with RtmpServer(hub, port=0) as server:
        client = await RawRtmpClient.open(server.port)
        await client.connect_and_publish(GOOD_KEY)
        assert (await client.wait_status())["code"] == "NetStream.Publish.Start"
        await client.send(RtmpMessage(4, msg.AUDIO, 1, 0, AAC_CONFIG))
        for n in range(1, 61):  # small writes spread over ~0.6 s: many gathered reads
            await client.send(RtmpMessage(4, msg.AUDIO, 1, n * 10, aac_frame(n)))
            await asyncio.sleep(0.01)
        await wait_until(lambda: len(hub.sinks[0].units) == 61)
        assert [u.dts for u in hub.sinks[0].units[1:]] == [n * 10 for n in range(1, 61)]
        await client.command("deleteStream", 9.0, None, 1.0)
        await wait_until(lambda: hub.sinks[0].close_reasons == ["deleteStream"])
        await client.close()


async def test_the_hub_can_drop_a_publisher(caplog: pytest.LogCaptureFixture) -> None:
    # the node ended the broadcast (POST /end, a force-end from another node, a lost lease)
    caplog.set_level(logging.INFO, logger="onair.rtmp")
    hub = RecordingHub()
    async with RtmpServer(hub, port=0) as server:
        client = await RawRtmpClient.open(server.port)
        await client.connect_and_publish(GOOD_KEY)
        assert (await client.wait_status())["code"] == "NetStream.Publish.Start"
        sink = hub.sinks[0]
        assert sink.disconnect is not None
        sink.disconnect()
        assert await client.closed_by_server()
        await wait_until(lambda: sink.close_reasons == ["network"])
        assert "disconnected by the node" in caplog.text
