"""The pure RTMP client session (simulcast's forwarding side), against onair's own pure server session:
handshake (digest and simple), connect → createStream → publish, media, refusals, clean end; fuzzed."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.media import MediaKind, MediaUnit
from ingest.rtmp import messages as msg
from ingest.rtmp.chunk import ChunkDecoder, ChunkEncoder
from ingest.rtmp.client import ClientState, PublishStarted, Rejected, RtmpClientSession, StreamClosed
from ingest.rtmp.errors import RtmpProtocolError
from ingest.rtmp.handshake import ClientHandshake, ServerHandshake
from ingest.rtmp.session import PublishRequested, RtmpSession, UnitReceived, Unpublished

KEY = "sk_live_secret_0123456789"


def _pair() -> tuple[RtmpClientSession, RtmpSession, list]:
    client = RtmpClientSession("live", "rtmp://127.0.0.1:1935/live", KEY)
    server = RtmpSession(app_name="live")
    events: list = []
    to_server = client.start()
    for _ in range(20):
        step = server.receive(to_server)
        events += step.events
        for event in step.events:
            if isinstance(event, PublishRequested):
                step.data += server.accept_publish()
        cstep = client.receive(step.data)
        events += cstep.events
        to_server = cstep.data
        if client.publishing and not to_server:
            break
    return client, server, events


def test_handshake_digest_form_is_verified_by_the_server_side() -> None:
    client = ClientHandshake()
    server = ServerHandshake()
    answer = server.feed(client.start())
    assert server.digest  # our C1 carries a valid FP9 digest
    c2 = client.feed(answer)
    assert client.done and client.digest and len(c2) == 1536
    server.feed(c2)
    assert server.done


def test_handshake_simple_server_gets_s1_echoed() -> None:
    client = ClientHandshake()
    client.start()
    s1 = bytes(8) + (bytes(range(256)) * 6)[:1528]
    c2 = client.feed(b"\x03" + s1 + bytes(1536) + b"rest")
    assert c2 == s1 and not client.digest
    assert client.take_rest() == b"rest"


def test_handshake_refuses_a_wrong_version() -> None:
    client = ClientHandshake()
    client.start()
    try:
        client.feed(b"\x06" + bytes(10))
    except RtmpProtocolError as exc:
        assert "0x06" in str(exc)
    else:
        raise AssertionError("version 6 accepted")


def test_publish_reaches_the_server_with_the_key_and_media() -> None:
    client, server, events = _pair()
    assert client.state is ClientState.PUBLISHING
    requested = [e for e in events if isinstance(e, PublishRequested)]
    assert [r.stream_key for r in requested] == [KEY]
    assert any(isinstance(e, PublishStarted) for e in events)
    units = [MediaUnit(MediaKind.VIDEO, "h264", 0, 0, True, True, b"\x01\x64\x00\x1f\xff"),
             MediaUnit(MediaKind.AUDIO, "aac", 0, 0, True, True, b"\x11\x90"),
             MediaUnit(MediaKind.VIDEO, "h264", 40, 80, True, False, b"\x00\x00\x00\x02\x65\x88" * 2000),
             MediaUnit(MediaKind.AUDIO, "aac", 42, 0, True, False, b"\x21" * 300)]
    wire = client.metadata({"videocodecid": 7.0, "audiocodecid": 10.0})
    stamps = [0, 0, 1000, 1002]
    wire += b"".join(client.send_unit(u, ts) for u, ts in zip(units, stamps))
    got = [e.unit for e in server.receive(wire).events if isinstance(e, UnitReceived)]
    assert [(u.kind, u.config, u.keyframe, u.cts, u.data) for u in got] == \
        [(u.kind, u.config, u.keyframe, u.cts, u.data) for u in units]
    assert [u.dts for u in got] == stamps
    assert client.media_bytes == sum(len(u.data) for u in units) + 2 * 5 + 2 * 2
    step = server.receive(client.finish())
    assert [type(e) for e in step.events] == [Unpublished]
    assert client.state is ClientState.CLOSED


def test_publish_refused_by_the_destination_is_a_rejection() -> None:
    client = RtmpClientSession("live", "rtmp://h/live", KEY)
    server = RtmpSession(app_name="live")
    to_server = client.start()
    rejected: list = []
    for _ in range(20):
        step = server.receive(to_server)
        for event in step.events:
            if isinstance(event, PublishRequested):
                step.data += server.refuse_publish("bad_key", "unknown stream key")
        cstep = client.receive(step.data)
        rejected += [e for e in cstep.events if isinstance(e, Rejected)]
        to_server = cstep.data
        if rejected or not to_server:
            break
    assert rejected == [Rejected("NetStream.Publish.BadName", "unknown stream key")]
    assert client.state is ClientState.CLOSED


def test_connect_to_an_unknown_app_is_a_rejection() -> None:
    client = RtmpClientSession("nope", "rtmp://h/nope", KEY)
    server = RtmpSession(app_name="live")
    step = server.receive(client.start())
    cstep = client.receive(step.data)
    step = server.receive(cstep.data)
    cstep = client.receive(step.data)
    assert [type(e) for e in cstep.events] == [Rejected]
    assert cstep.events[0].code == "NetConnection.Connect.Rejected"  # type: ignore[union-attr]


def _publishing_client() -> tuple[RtmpClientSession, ChunkEncoder, ChunkDecoder]:
    """A client publishing to a scripted server; the decoder reads everything the client sent."""
    client = RtmpClientSession("live", "rtmp://h/live", KEY)
    client.start()
    sent = ChunkDecoder()
    enc = ChunkEncoder()
    sent.feed(client.receive(b"\x03" + bytes(1536 * 2)).data[1536:])
    sent.feed(client.receive(enc.encode(msg.connect_result(1.0))).data)
    sent.feed(client.receive(enc.encode(msg.result(4.0, None, 1.0))).data)
    client.receive(enc.encode(msg.on_status(1, "status", "NetStream.Publish.Start", "go")))
    assert client.publishing
    return client, enc, sent


def test_ping_is_answered_and_acks_are_sent_past_the_window() -> None:
    client, enc, sent = _publishing_client()
    answers = sent.feed(client.receive(enc.encode(msg.user_control(msg.PING_REQUEST, b"\x00\x00\x01\x02"))).data)
    assert [(m.type_id, m.payload) for m in answers] == \
        [(msg.USER_CONTROL, msg.PING_RESPONSE.to_bytes(2, "big") + b"\x00\x00\x01\x02")]
    first = sent.feed(client.receive(enc.encode(msg.window_ack_size(1000))).data)
    assert first == []  # fewer than 1000 bytes since the handshake
    answers = sent.feed(client.receive(enc.encode(msg.command("onBWDone", 0.0, None, "x" * 1000))).data)
    assert [m.type_id for m in answers] == [msg.ACKNOWLEDGEMENT]
    assert msg.parse_u32(answers[0].payload, "ack") > 1000
    assert sent.feed(client.receive(enc.encode(msg.command("onBWDone", 0.0, None, "y"))).data) == []


def test_the_destination_ending_the_stream_is_reported() -> None:
    client, enc, _ = _publishing_client()
    step = client.receive(enc.encode(msg.on_status(1, "status", "NetStream.Unpublish.Success", "bye")))
    assert step.events == [StreamClosed("NetStream.Unpublish.Success")]
    assert client.state is ClientState.CLOSED


def test_a_bad_stream_id_from_create_stream_is_a_protocol_error() -> None:
    client = RtmpClientSession("live", "rtmp://h/live", KEY)
    client.start()
    client.receive(b"\x03" + bytes(1536 * 2))
    enc = ChunkEncoder()
    client.receive(enc.encode(msg.connect_result(1.0)))
    try:
        client.receive(enc.encode(msg.result(4.0, None, -3.0)))
    except RtmpProtocolError as exc:
        assert "stream id" in str(exc)
    else:
        raise AssertionError("negative stream id accepted")


def test_media_before_publish_start_is_refused() -> None:
    client = RtmpClientSession("live", "rtmp://h/live", KEY)
    try:
        client.send_unit(MediaUnit(MediaKind.AUDIO, "aac", 0, 0, True, False, b"x"), 0)
    except RuntimeError as exc:
        assert "before the publish" in str(exc)
    else:
        raise AssertionError("media sent before publish")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=600), max_size=6))
def test_whatever_a_destination_sends_only_protocol_errors_are_raised(chunks: list[bytes]) -> None:
    client = RtmpClientSession("live", "rtmp://h/live", KEY)
    client.start()
    try:
        client.receive(b"\x03" + bytes(1536 * 2))
        for data in chunks:
            client.receive(data)
    except RtmpProtocolError:
        pass
