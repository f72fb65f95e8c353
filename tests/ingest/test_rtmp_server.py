"""RtmpServer over real sockets with hand-built byte sequences: refusals,
malformed input, shutdown.  (Real publisher clients: test_rtmp_clients.py.)"""

from __future__ import annotations

import asyncio
import logging

import pytest

from ingest.rtmp import RtmpServer, amf0
from ingest.rtmp import messages as msg
from ingest.rtmp.chunk import RtmpMessage
from tests.ingest.conftest import GOOD_KEY, MALFORMED, RawRtmpClient, RecordingHub, run_malformed, wait_until


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_malformed_input_closes_only_that_connection(
        name: str, rtmp_server: RtmpServer, rtmp_hub: RecordingHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onair.rtmp")
    bystander = await RawRtmpClient.open(rtmp_server.port)  # an unrelated healthy connection
    await run_malformed(name, rtmp_server.port, rtmp_hub, caplog)
    # the server still serves: the bystander publishes fine afterwards
    await bystander.connect_and_publish(GOOD_KEY)
    assert (await bystander.wait_status())["code"] == "NetStream.Publish.Start"
    await bystander.close()
    await wait_until(lambda: rtmp_hub.sinks[0].close_reasons == ["network"])


async def test_wrong_key_is_refused_with_bad_name(rtmp_server: RtmpServer, rtmp_hub: RecordingHub,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onair.rtmp")
    client = await RawRtmpClient.open(rtmp_server.port)
    await client.connect_and_publish("wrong-key-999")
    status = await client.wait_status()
    assert status["level"] == "error" and status["code"] == "NetStream.Publish.BadName"
    assert await client.closed_by_server()
    assert rtmp_hub.sinks == [] and rtmp_hub.refused == ["bad_key"]
    text = caplog.text
    assert "wron…" in text and "wrong-key-999" not in text  # keys are redacted


async def test_second_publisher_on_live_key_is_refused(rtmp_server: RtmpServer, rtmp_hub: RecordingHub) -> None:
    first = await RawRtmpClient.open(rtmp_server.port)
    await first.connect_and_publish(GOOD_KEY)
    assert (await first.wait_status())["code"] == "NetStream.Publish.Start"
    second = await RawRtmpClient.open(rtmp_server.port)
    await second.connect_and_publish(GOOD_KEY)
    status = await second.wait_status()
    assert status["code"] == "NetStream.Publish.BadName"
    assert status["description"] == "this stream key is already live"
    assert await second.closed_by_server()
    assert len(rtmp_hub.sinks) == 1 and rtmp_hub.sinks[0].close_reasons == []
    assert rtmp_hub.refused == ["already_live"]
    await first.command("deleteStream", 9.0, None, 1.0)
    await wait_until(lambda: rtmp_hub.sinks[0].close_reasons == ["deleteStream"])
    await first.close()
    await asyncio.sleep(0.05)
    assert rtmp_hub.sinks[0].close_reasons == ["deleteStream"]  # exactly once


async def test_hevc_over_enhanced_rtmp_is_refused(rtmp_server: RtmpServer, rtmp_hub: RecordingHub,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onair.rtmp")
    client = await RawRtmpClient.open(rtmp_server.port)
    await client.connect_and_publish(GOOD_KEY)
    assert (await client.wait_status())["code"] == "NetStream.Publish.Start"
    # Enhanced RTMP: IsExHeader | keyframe | SequenceStart, FourCC hvc1, an HEVC config record
    hvcc = b"\x01\x01\x60\x00\x00\x00\x90\x00\x00\x00\x00\x00\x5d\xf0\x00\xfc\xfd\xf8\xf8\x00\x00\x0f\x00"
    await client.send(RtmpMessage(6, msg.VIDEO, 1, 0, bytes([0x80 | 0x10 | 0x00]) + b"hvc1" + hvcc))
    status = await client.wait_status()
    assert status["level"] == "error" and status["code"] == "NetStream.Publish.Rejected"
    assert status["description"] == ("unsupported video codec 'hvc1': onair accepts H.264 video and AAC audio")
    assert await client.closed_by_server()
    sink = rtmp_hub.sinks[0]
    await wait_until(lambda: bool(sink.close_reasons))
    assert sink.close_reasons == [status["description"]]
    assert sink.close_reasons[0].startswith("unsupported video codec")
    assert ("rtmp", "unsupported_codec") in rtmp_hub.refusals
    assert "unsupported_codec" in caplog.text


async def test_play_is_refused(rtmp_server: RtmpServer, rtmp_hub: RecordingHub) -> None:
    client = await RawRtmpClient.open(rtmp_server.port)
    await client.command("connect", 1.0, {"app": "live"})
    await client.command("createStream", 2.0, None)
    await client.command("play", 3.0, None, GOOD_KEY, stream_id=1)
    status = await client.wait_status()
    assert status["code"] == "NetStream.Play.Failed"
    assert await client.closed_by_server()
    assert ("rtmp", "play") in rtmp_hub.refusals


async def test_handshake_timeout(rtmp_hub: RecordingHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onair.rtmp")
    async with RtmpServer(rtmp_hub, port=0, handshake_timeout=0.3) as server:
        client = await RawRtmpClient.open(server.port, handshake=False)
        await client.send_raw(b"\x03" + bytes(10))  # a slow client that never finishes
        assert await client.closed_by_server()
        assert rtmp_hub.refusals == [("rtmp", "handshake_timeout")]


async def test_close_ends_every_connection_and_closes_sinks_once(rtmp_hub: RecordingHub) -> None:
    server = RtmpServer(rtmp_hub, port=0)
    await server.start()
    assert server.port != 0
    publisher = await RawRtmpClient.open(server.port)
    await publisher.connect_and_publish(GOOD_KEY)
    await publisher.wait_status()
    idle = await RawRtmpClient.open(server.port)
    await wait_until(lambda: server.connection_count == 2)
    await server.close()
    assert server.connection_count == 0
    assert rtmp_hub.sinks[0].close_reasons == ["shutdown"]
    assert await publisher.closed_by_server() and await idle.closed_by_server()
    await server.close()  # idempotent
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_app_name_is_configurable_and_other_apps_are_refused(rtmp_hub: RecordingHub) -> None:
    async with RtmpServer(rtmp_hub, port=0, app_name="ingest") as server:
        wrong = await RawRtmpClient.open(server.port)
        await wrong.command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live"})
        answer = await wrong.wait_for(lambda m: m.type_id == msg.COMMAND_AMF0)
        values = amf0.decode_all(answer.payload)
        assert values[0] == "_error" and values[3]["code"] == "NetConnection.Connect.Rejected"
        assert await wrong.closed_by_server()
        assert rtmp_hub.refusals == [("rtmp", "bad_app")]
        right = await RawRtmpClient.open(server.port)
        await right.command("connect", 1.0, {"app": "ingest"})
        await right.command("createStream", 2.0, None)
        await right.command("publish", 3.0, None, GOOD_KEY, "live", stream_id=1)
        assert (await right.wait_status())["code"] == "NetStream.Publish.Start"
        await right.close()


async def test_max_message_size_is_configurable(rtmp_hub: RecordingHub) -> None:
    async with RtmpServer(rtmp_hub, port=0, max_message_size=1000) as server:
        client = await RawRtmpClient.open(server.port)
        await client.send(RtmpMessage(3, msg.COMMAND_AMF0, 0, 0, amf0.encode("connect", 1.0, {"pad": "x" * 1000})))
        assert await client.closed_by_server()
        assert rtmp_hub.refusals == [("rtmp", "message_too_large")]
