"""What an RTMP connection may cost before and after its key check (ingest/rtmp/limits.py):
the pre-accept message bound in the session (fuzzed: whatever arrives, a connection that
has not asked to publish holds a few KiB at most), the accept deadline and the minimum
data rate (pure, then over real sockets)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.rtmp import RtmpServer
from ingest.rtmp import messages as msg
from ingest.rtmp.chunk import ChunkEncoder, RtmpMessage
from ingest.rtmp.errors import RtmpProtocolError
from ingest.rtmp.limits import SILENT, Progress, RtmpLimits, Stalled, next_check
from ingest.rtmp.session import PublishRequested, RtmpSession, UnitReceived
from tests.ingest.conftest import GOOD_KEY, RawRtmpClient, RecordingHub, wait_until

_HANDSHAKE = b"\x03" + bytes(1536) + bytes(1536)
PRE_ACCEPT = 4096
#: a message header (fmt 0, csid 3) announcing 16 MiB - 1 bytes of command
HUGE_HEADER = b"\x03" + bytes(3) + b"\xff\xff\xff" + b"\x14" + bytes(4)
AAC_CONFIG = bytes([0xAF, 0]) + bytes.fromhex("1190")


def _commands(*messages: RtmpMessage) -> bytes:
    enc = ChunkEncoder()
    return b"".join(enc.encode(m) for m in messages)


CONNECT = msg.command("connect", 1.0, {"app": "live"})
PUBLISH = [msg.command("createStream", 2.0, None),
           msg.command("publish", 3.0, None, GOOD_KEY, "live", csid=8, stream_id=1)]


# -- the pure progress rules -------------------------------------------------------

def test_a_connection_must_be_accepted_within_the_accept_timeout() -> None:
    progress = Progress(RtmpLimits(accept_timeout=10), now=100.0)
    assert progress.check(105.0, 5000) == 110.0
    verdict = progress.check(110.0, 5000)
    assert verdict == Stalled("accept_timeout", "no accepted publish within 10 s of connecting")


def test_an_accepted_publisher_must_keep_the_minimum_rate_over_each_window() -> None:
    progress = Progress(RtmpLimits(min_rate=1000, rate_window=10), now=0.0)
    progress.accepted(2.0, 3000)
    assert progress.check(5.0, 4000) == 12.0  # the window is not over: no verdict yet
    assert progress.check(12.0, 3000 + 10_000) == 22.0  # exactly 1,000 bytes/s
    verdict = progress.check(22.0, 13_000 + 9_999)
    assert isinstance(verdict, Stalled) and verdict.code == "too_slow"
    assert verdict.reason == "9999 bytes in 10.0 s, below the minimum of 1000 bytes/s"


def test_time_the_node_made_the_publisher_wait_starts_a_new_window() -> None:
    progress = Progress(RtmpLimits(min_rate=1000, rate_window=10), now=0.0)
    progress.accepted(0.0, 0)
    progress.restart_window(9.0, 100)  # e.g. the client's window was full: we did not read
    assert progress.check(10.0, 100) == 19.0
    assert isinstance(progress.check(19.0, 100), Stalled)


def test_min_rate_zero_turns_the_rate_check_off() -> None:
    progress = Progress(RtmpLimits(min_rate=0, rate_window=5), now=0.0)
    progress.accepted(0.0, 0)
    assert progress.check(1000.0, 0) == 1005.0


def _check(progress: Progress, now: float, **state: object) -> object:
    defaults: dict[str, object] = {"bytes_in": 0, "idle_timeout": 30.0, "busy": False, "write_paused_at": None,
                                   "handshake_done": True, "handshake_deadline": 10.0, "last_data": now}
    return next_check(progress, now, **{**defaults, **state})  # type: ignore[arg-type]


def test_the_servers_timer_decides_from_the_connections_state() -> None:
    limits = RtmpLimits(accept_timeout=10, min_rate=1000, rate_window=10)
    fresh = Progress(limits, now=0.0)
    assert _check(fresh, 3.0, handshake_done=False) == 10.0
    assert _check(fresh, 10.0, handshake_done=False) is SILENT
    assert _check(fresh, 5.0) == 10.0  # handshake done, not accepted: the accept deadline is next
    assert isinstance(_check(fresh, 10.0), Stalled)
    assert _check(fresh, 12.0, busy=True) == 42.0  # the hub decides: neither deadline runs
    stalled = _check(fresh, 40.0, write_paused_at=5.0)
    assert stalled == Stalled("write_timeout", "client has not read for 30 s")
    publishing = Progress(limits, now=0.0)
    publishing.accepted(1.0, 5000)
    assert _check(publishing, 5.0, bytes_in=6000, last_data=4.0) == 11.0
    assert _check(publishing, 34.0, bytes_in=6000, last_data=4.0) is SILENT  # 30 s without a byte
    # a client that does not read: the rate window restarts instead of counting its pause
    assert _check(publishing, 11.0, bytes_in=5001, write_paused_at=10.0) == 40.0
    assert _check(publishing, 20.0, bytes_in=5001 + 9000) == 21.0


@pytest.mark.parametrize("kwargs", [{"pre_accept_message_size": 10}, {"accept_timeout": 0},
                                    {"min_rate": -1}, {"rate_window": 0}])
def test_limits_refuse_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RtmpLimits(**kwargs)  # type: ignore[arg-type]


# -- the session's pre-accept bound ----------------------------------------------------

def test_a_huge_message_header_before_the_publish_is_refused_at_once() -> None:
    session = RtmpSession(pre_accept_message_size=PRE_ACCEPT)
    session.receive(_HANDSHAKE)
    with pytest.raises(RtmpProtocolError) as info:
        session.receive(HUGE_HEADER)
    assert info.value.code == "message_too_large"
    assert str(info.value) == ("message length 16777215 exceeds the limit of 4096 bytes before the publish "
                               "is accepted")


def _header(csid: int, length: int) -> bytes:
    return bytes([csid]) + bytes(3) + length.to_bytes(3, "big") + b"\x14" + bytes(4)


def test_a_message_within_the_bound_holds_no_more_than_it_announced() -> None:
    session = RtmpSession(pre_accept_message_size=PRE_ACCEPT)
    session.receive(_HANDSHAKE + _commands(msg.set_chunk_size(1 << 24)))  # the whole message in one chunk
    session.receive(_header(3, PRE_ACCEPT))
    for _ in range(PRE_ACCEPT // 512 - 1):
        session.receive(bytes(512))
        assert session.held_bytes <= PRE_ACCEPT + 12


def test_partial_messages_on_several_chunk_streams_share_the_bound() -> None:
    session = RtmpSession(pre_accept_message_size=PRE_ACCEPT)
    session.receive(_HANDSHAKE)
    session.receive(_header(3, 3000) + bytes(128))  # first chunk of 3,000 bytes on stream 3
    with pytest.raises(RtmpProtocolError) as info:
        session.receive(_header(4, 3000) + bytes(128))  # and another on stream 4: 6,000 reserved
    assert info.value.code == "buffer_overflow"
    assert str(info.value) == ("partial messages would exceed the buffer limit of 4096 bytes before the "
                               "publish is accepted")


def test_media_pipelined_after_the_publish_gets_the_full_size() -> None:
    """A client that does not wait for the answer may send a large keyframe right after its publish."""
    session = RtmpSession(pre_accept_message_size=PRE_ACCEPT)
    big = bytes([0x17, 1, 0, 0, 0]) + bytes(100_000)
    step = session.receive(_HANDSHAKE + _commands(CONNECT, *PUBLISH,
                                                  RtmpMessage(4, msg.AUDIO, 1, 0, AAC_CONFIG),
                                                  RtmpMessage(6, msg.VIDEO, 1, 0, big)))
    assert any(isinstance(e, PublishRequested) for e in step.events)
    assert any(isinstance(e, UnitReceived) for e in step.events)
    session.accept_publish()
    assert session.accepted


def test_a_flood_of_commands_before_the_publish_is_refused() -> None:
    """Each command before the publish is parsed on its own (the publish may change the bound):
    a read of thousands of them must not cost thousands of passes over the read."""
    session = RtmpSession(pre_accept_message_size=PRE_ACCEPT)
    session.receive(_HANDSHAKE + _commands(CONNECT))
    with pytest.raises(RtmpProtocolError) as info:
        session.receive(_commands(*[msg.command("_checkbw", float(n), None) for n in range(2, 2000)]))
    assert info.value.code == "too_many_commands"
    assert str(info.value) == "more than 32 commands before an accepted publish"


def _prefix_connected() -> bytes:
    return _HANDSHAKE + _commands(CONNECT)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.sampled_from([b"", _HANDSHAKE, b"PREFIX"]), st.lists(st.binary(max_size=3000), max_size=8))
def test_before_its_publish_a_connection_holds_a_few_kib_whatever_it_sends(prefix: bytes, reads: list[bytes]) -> None:
    session = RtmpSession(pre_accept_message_size=PRE_ACCEPT)
    try:
        session.receive(_prefix_connected() if prefix == b"PREFIX" else prefix)
        for data in reads:
            step = session.receive(data)
            if any(isinstance(e, PublishRequested) for e in step.events):
                return  # from here the server reads nothing until the hub decided
            # an incomplete chunk (header ≤ 18 bytes + body) and partial messages, each ≤ the bound;
            # the handshake holds at most its C0+C1 or C2 (plus the rest of one read)
            assert session.held_bytes <= 2 * PRE_ACCEPT + 18 + (3073 + len(data) if not session.handshake_done else 0)
    except RtmpProtocolError:
        pass


# -- over real sockets -----------------------------------------------------------------

async def test_a_trickled_connect_is_closed_at_the_accept_deadline(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onair.rtmp")
    hub = RecordingHub()
    limits = RtmpLimits(accept_timeout=0.6)
    async with RtmpServer(hub, port=0, idle_timeout=30, limits=limits) as server:
        client = await RawRtmpClient.open(server.port)
        data = ChunkEncoder().encode(CONNECT)
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def trickle() -> None:
            for byte in data:
                await client.send_raw(bytes([byte]))
                await asyncio.sleep(0.1)

        task = asyncio.create_task(trickle())
        try:
            assert await client.closed_by_server(timeout=5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert loop.time() - started < 2.5
        await wait_until(lambda: hub.refusals == [("rtmp", "accept_timeout")])
        assert "no accepted publish within 0.6 s of connecting" in caplog.text
        await client.close()


async def test_an_accepted_publisher_trickling_is_closed_after_one_window(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onair.rtmp")
    hub = RecordingHub()
    limits = RtmpLimits(min_rate=1000, rate_window=0.5)
    async with RtmpServer(hub, port=0, idle_timeout=30, limits=limits) as server:
        bystander = await RawRtmpClient.open(server.port)  # a healthy publisher on another key is unaffected
        hub.keys.add("other-key-456")
        await bystander.connect_and_publish("other-key-456")
        assert (await bystander.wait_status())["code"] == "NetStream.Publish.Start"
        client = await RawRtmpClient.open(server.port)
        await client.connect_and_publish(GOOD_KEY)
        assert (await client.wait_status())["code"] == "NetStream.Publish.Start"

        async def send(c: RawRtmpClient, size: int, pause: float) -> None:
            n = 0
            while True:
                n += 1
                await c.send(RtmpMessage(4, msg.AUDIO, 1, n * 20, bytes([0xAF, 1]) + bytes(size)))
                await asyncio.sleep(pause)

        tasks = [asyncio.create_task(send(client, 1, 0.2)),  # ~60 bytes/s
                 asyncio.create_task(send(bystander, 400, 0.05))]  # ~8 KB/s
        try:
            assert await client.closed_by_server(timeout=5)
            await wait_until(lambda: ("rtmp", "too_slow") in hub.refusals)
            await asyncio.sleep(1.0)  # two more windows: the bystander still publishes
            assert hub.refusals == [("rtmp", "too_slow")]
            assert hub.sink_for("other-key-456").close_reasons == []
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await wait_until(lambda: hub.sink_for(GOOD_KEY).close_reasons == ["network"])
        assert "below the minimum of 1000 bytes/s" in caplog.text
        await client.close()
        await bystander.close()
