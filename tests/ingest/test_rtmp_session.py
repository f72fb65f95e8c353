"""The I/O-free session: scripted client bytes in, expected answers and events out."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ingest.flv import encode_tag
from ingest.media import MediaKind
from ingest.rtmp import amf0
from ingest.rtmp import messages as msg
from ingest.rtmp.chunk import ChunkDecoder, ChunkEncoder, RtmpMessage
from ingest.rtmp.errors import RtmpProtocolError
from ingest.rtmp.session import (
    Connected,
    MetadataReceived,
    PublishRequested,
    Refused,
    RtmpSession,
    SessionState,
    UnitReceived,
    Unpublished,
    publish_refusal_status,
)

AVC_CONFIG = b"\x01\x64\x00\x1f\xff\xe1\x00\x04\x67\x64\x00\x1f\x01\x00\x04\x68\xee\x3c\x80"


class Script:
    """Drives a session like a client would and decodes what it answers."""

    def __init__(self, **kwargs: Any) -> None:
        self.session = RtmpSession(**kwargs)
        self.enc = ChunkEncoder()
        self.dec = ChunkDecoder()
        c1 = bytes(8) + os.urandom(1528)
        step = self.session.receive(b"\x03" + c1)
        assert step.data[1 + 1536:] == c1
        self.step = self.session.receive(step.data[1:1 + 1536])
        assert self.session.state is SessionState.CONNECTING

    def send(self, *messages: RtmpMessage) -> tuple[list[list[Any]], list[Any]]:
        data = b"".join(self.enc.encode(m) for m in messages)
        step = self.session.receive(data)
        return self.answers(step.data), step.events

    def answers(self, data: bytes) -> list[list[Any]]:
        out = []
        for m in self.dec.feed(data):
            if m.type_id == msg.COMMAND_AMF0:
                out.append(amf0.decode_all(m.payload))
            else:
                out.append([m.type_id, m.payload])
        return out

    def connect(self, app: str = "live") -> tuple[list[list[Any]], list[Any]]:
        return self.send(msg.command("connect", 1.0, {"app": app, "tcUrl": f"rtmp://h/{app}", "objectEncoding": 0.0}))

    def publish(self, name: str) -> list[Any]:
        self.connect()
        self.send(msg.command("createStream", 2.0, None))
        _, events = self.send(msg.command("publish", 3.0, None, name, "live", csid=8, stream_id=1))
        return events


def commands(answers: list[list[Any]]) -> list[Any]:
    return [a[0] for a in answers if isinstance(a[0], str)]


def test_connect_is_answered_with_control_messages_and_result() -> None:
    s = Script()
    answers, events = s.connect()
    assert events == [Connected("live", "rtmp://h/live")]
    types = [a[0] for a in answers]
    assert types[:4] == [msg.WINDOW_ACK_SIZE, msg.SET_PEER_BANDWIDTH, msg.SET_CHUNK_SIZE, msg.USER_CONTROL]
    assert answers[2][1] == (4096).to_bytes(4, "big")
    result = answers[4]
    assert result[0] == "_result" and result[1] == 1.0
    assert result[3]["code"] == "NetConnection.Connect.Success"
    assert answers[5][0] == "onBWDone"


def test_full_publish_flow_strips_query_and_emits_media_and_metadata() -> None:
    s = Script()
    s.connect()
    answers, _ = s.send(msg.command("releaseStream", 2.0, None, "key"), msg.command("FCPublish", 3.0, None, "key"),
                        msg.command("createStream", 4.0, None))
    assert [(a[0], a[1]) for a in answers] == [("_result", 2.0), ("_result", 3.0), ("_result", 4.0)]
    assert answers[2][3] == 1.0  # the stream id
    _, events = s.send(msg.command("publish", 5.0, None, "abc123?token=x", "live", csid=8, stream_id=1))
    assert events == [PublishRequested("abc123", 1)]
    assert s.session.state is SessionState.PUBLISH_PENDING
    start = s.answers(s.session.accept_publish())
    assert start[0][0] == msg.USER_CONTROL and start[0][1] == b"\x00\x00\x00\x00\x00\x01"  # StreamBegin 1
    assert start[1][0] == "onStatus" and start[1][3]["code"] == "NetStream.Publish.Start"
    meta = msg.data_message(1, "@setDataFrame", "onMetaData", amf0.EcmaArray(width=320.0, height=240.0))
    video_cfg = RtmpMessage(6, msg.VIDEO, 1, 0, b"\x17\x00\x00\x00\x00" + AVC_CONFIG)
    video = RtmpMessage(6, msg.VIDEO, 1, 40, b"\x17\x01\x00\x00\x50" + b"\x00\x00\x00\x01\x65")
    audio_cfg = RtmpMessage(4, msg.AUDIO, 1, 0, b"\xaf\x00\x12\x10")
    audio = RtmpMessage(4, msg.AUDIO, 1, 23, b"\xaf\x01" + b"\x21" * 10)
    _, events = s.send(meta, video_cfg, audio_cfg, video, audio)
    assert events[0] == MetadataReceived({"width": 320.0, "height": 240.0})
    units = [e.unit for e in events[1:] if isinstance(e, UnitReceived)]
    assert [(u.kind, u.config, u.dts, u.cts, u.keyframe) for u in units] == [
        (MediaKind.VIDEO, True, 0, 0, True), (MediaKind.AUDIO, True, 0, 0, True),
        (MediaKind.VIDEO, False, 40, 80, True), (MediaKind.AUDIO, False, 23, 0, True)]
    assert units[0].data == AVC_CONFIG
    _, events = s.send(msg.command("FCUnpublish", 6.0, None, "abc123"), msg.command("deleteStream", 7.0, None, 1.0))
    assert events == [Unpublished("deleteStream")]  # once, not twice
    assert s.session.state is SessionState.CONNECTED


def test_aggregate_message_is_split_into_units() -> None:
    s = Script()
    s.publish("abc")
    s.answers(s.session.accept_publish())
    tags = encode_tag(9, 1000, b"\x17\x00\x00\x00\x00" + AVC_CONFIG) + encode_tag(8, 1020, b"\xaf\x01\x21\x21")
    _, events = s.send(RtmpMessage(6, msg.AGGREGATE, 1, 500, tags))
    units = [e.unit for e in events]
    assert [(u.kind, u.config, u.dts) for u in units] == [(MediaKind.VIDEO, True, 500), (MediaKind.AUDIO, False, 520)]


def test_amf3_command_format_byte_is_skipped() -> None:
    s = Script()
    payload = b"\x00" + amf0.encode("connect", 1.0, {"app": "live"})
    _, events = s.send(RtmpMessage(3, msg.COMMAND_AMF3, 0, 0, payload))
    assert events == [Connected("live", None)]


def test_wrong_app_is_rejected() -> None:
    s = Script()
    answers, events = s.connect("other")
    assert answers[0][0] == "_error" and answers[0][3]["code"] == "NetConnection.Connect.Rejected"
    assert events[-1] == Refused("bad_app", "unknown application 'other'")
    assert s.session.state is SessionState.CLOSED


def test_app_with_query_and_slash_is_live() -> None:
    s = Script()
    _, events = s.connect("live/?x=1")
    assert events == [Connected("live", "rtmp://h/live/?x=1")]


def test_play_is_refused() -> None:
    s = Script()
    s.connect()
    answers, events = s.send(msg.command("play", 4.0, None, "abc", csid=8, stream_id=1))
    assert answers[0][0] == "onStatus" and answers[0][3]["code"] == "NetStream.Play.Failed"
    assert isinstance(events[0], Refused) and events[0].code == "play"


def test_hevc_over_enhanced_rtmp_is_rejected_with_status() -> None:
    s = Script()
    assert s.publish("abc") == [PublishRequested("abc", 1)]
    s.answers(s.session.accept_publish())
    hevc = RtmpMessage(6, msg.VIDEO, 1, 0, bytes([0x80 | 0x10 | 0]) + b"hvc1" + b"\x01" * 20)
    answers, events = s.send(hevc)
    assert answers[0][3]["code"] == "NetStream.Publish.Rejected"
    assert "unsupported video codec 'hvc1'" in answers[0][3]["description"]
    assert events == [Refused("unsupported_codec", answers[0][3]["description"])]
    # nothing more is parsed after the refusal
    assert s.session.receive(b"\xff" * 100).events == []


@pytest.mark.parametrize("code, status", [("bad_key", "NetStream.Publish.BadName"),
                                          ("already_live", "NetStream.Publish.BadName"),
                                          ("ended", "NetStream.Publish.Rejected"),
                                          ("busy", "NetStream.Publish.Rejected")])
def test_refusal_status_mapping(code: str, status: str) -> None:
    assert publish_refusal_status(code) == status
    s = Script()
    s.publish("abc")
    answer = s.answers(s.session.refuse_publish(code, "described"))
    assert answer[0][3]["code"] == status and answer[0][3]["description"] == "described"
    assert s.session.state is SessionState.CLOSED


def test_acknowledgement_sent_after_peer_window() -> None:
    s = Script()
    s.connect()
    answers, _ = s.send(RtmpMessage(2, msg.WINDOW_ACK_SIZE, 0, 0, (1000).to_bytes(4, "big")))
    assert answers == []
    answers, _ = s.send(msg.command("releaseStream", 0.0, None, "x" * 1200))
    acks = [a for a in answers if a[0] == msg.ACKNOWLEDGEMENT]
    assert len(acks) == 1
    assert int.from_bytes(acks[0][1], "big") == s.session._decoder.bytes_received


def test_client_chunk_size_applies_to_following_chunks() -> None:
    s = Script()
    s.connect()
    s.send(msg.set_chunk_size(4096))
    s.enc.set_chunk_size(4096)
    _, events = s.send(msg.command("publish", 3.0, None, "k" * 3000, "live", csid=8, stream_id=1))
    assert events == [PublishRequested("k" * 3000, 1)]


def test_command_before_connect_is_an_error() -> None:
    s = Script()
    with pytest.raises(RtmpProtocolError, match="command 'publish' before connect"):
        s.send(msg.command("publish", 3.0, None, "k", "live"))


def test_eof_mid_chunk_is_an_error_but_clean_eof_is_not() -> None:
    s = Script()
    s.connect()
    s.session.eof()  # between messages: fine
    s.session.receive(ChunkEncoder().encode(msg.command("createStream", 2.0, None))[:5])
    with pytest.raises(RtmpProtocolError) as info:
        s.session.eof()
    assert str(info.value) == "connection closed in the middle of a chunk" and info.value.code == "truncated"


def test_eof_during_handshake() -> None:
    session = RtmpSession()
    session.eof()  # a port probe that sent nothing
    session.receive(b"\x03" + bytes(100))
    with pytest.raises(RtmpProtocolError, match="connection closed during the handshake"):
        session.eof()


def test_malformed_media_is_a_protocol_error() -> None:
    s = Script()
    s.publish("abc")
    s.answers(s.session.accept_publish())
    with pytest.raises(RtmpProtocolError) as info:
        s.send(RtmpMessage(6, msg.VIDEO, 1, 0, b"\x17\x01"))
    assert str(info.value) == "malformed video message: AVC video header is truncated"
    assert info.value.code == "bad_media"
