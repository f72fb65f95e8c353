"""Pure parts of the chat: message parsing, frames, viewer tokens, rate limits."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, strategies as st

from broadcaster.chat import protocol as proto
from broadcaster.chat.ratelimit import TokenBucket
from broadcaster.chat.comments import frame_payload as _frame_payload, resolve_since as _resolve_since
from broadcaster.chat.tokens import TokenError, issue, verify


def test_parse_valid_messages() -> None:
    assert proto.parse_client_message('{"type":"hello","name":"  Ada   L "}') == proto.Hello("Ada L", None, None)
    assert proto.parse_client_message('{"type":"hello","token":"vt1.a.b","since":"c_1"}') == \
        proto.Hello(None, "vt1.a.b", "c_1")
    assert proto.parse_client_message('{"type":"comment","text":" hi ","question":true}') == proto.CommentIn("hi", True)
    assert proto.parse_client_message('{"type":"react","kind":"curious"}') == proto.React("curious")
    assert proto.parse_client_message(json.dumps({"type": "comment", "text": "é" * 500})).text == "é" * 500


@pytest.mark.parametrize("raw, code, message", [
    ("", "invalid_json", "message is not valid JSON"),
    ("[" * 100_000, "invalid_json", "message is not valid JSON"),
    ('{"type":"hello","name":"a","since":NaN}', "invalid_json", "message is not valid JSON"),
    ('{"type":"hello","name":"a","since":1e400}', "invalid_json", "message is not valid JSON"),
    ('"x"', "bad_message", "message must be a JSON object"),
    ('{"kind":"like"}', "bad_message", "message needs a string 'type'"),
    ('{"type":"x"}', "unknown_type", "unknown message type 'x'"),
    ('{"type":"hello","name":""}', "bad_field", "'name' must be a non-empty string"),
    ('{"type":"hello","name":"a","since":true}', "bad_field", "'since' must be a comment id or seq"),
    ('{"type":"hello","token":5}', "bad_field", "'token' must be a viewer token string"),
    ('{"type":"comment"}', "bad_field", "'text' must be a non-empty string"),
    ('{"type":"react"}', "bad_field", "'kind' must be one of like, celebrate, love, insightful, curious"),
])
def test_parse_errors_are_exact(raw: str, code: str, message: str) -> None:
    with pytest.raises(proto.ProtocolError) as info:
        proto.parse_client_message(raw)
    assert (info.value.code, info.value.message) == (code, message)


@given(st.text(max_size=200))
def test_parse_never_raises_anything_else(raw: str) -> None:
    try:
        proto.parse_client_message(raw)
    except proto.ProtocolError:
        pass


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_text_frame_lengths(size: int) -> None:
    payload = b"a" * size
    frame = proto.text_frame(payload)
    assert frame[0] == 0x81 and _frame_payload(frame) == payload
    if size < 126:
        assert frame[1] == size
    elif size < 65536:
        assert frame[1] == 126 and struct.unpack("!H", frame[2:4])[0] == size
    else:
        assert frame[1] == 127 and struct.unpack("!Q", frame[2:10])[0] == size


def test_close_frame() -> None:
    assert proto.close_frame(4000, "too slow") == b"\x88\x0a\x0f\xa0too slow"


def test_viewer_tokens() -> None:
    secret = b"s" * 32
    token = issue(secret, "b1", "v1", "Ada", ttl=60, now=1000.0)
    identity = verify(secret, token, "b1", now=1030.0)
    assert (identity.viewer_id, identity.name, identity.broadcast_id) == ("v1", "Ada", "b1")
    for bad, now, bid, message in [
        (token, 1061.0, "b1", "viewer token has expired"),
        (token, 1000.0, "b2", "viewer token is for another broadcast"),
        (issue(b"x" * 32, "b1", "v1", "Ada", now=1000.0), 1000.0, "b1", "viewer token signature is invalid"),
        ("vt1.only-two", 1000.0, "b1", "viewer token is malformed"),
        ("garbage", 1000.0, "b1", "viewer token is malformed"),
    ]:
        with pytest.raises(TokenError, match=message):
            verify(secret, bad, bid, now=now)


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take(now=bucket._stamp) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(now=bucket._stamp + 0.5)


def test_resolve_since() -> None:
    comments = [{"id": "a", "seq": 5}, {"id": "b", "seq": 6}]
    assert _resolve_since(comments, None) == 0
    assert _resolve_since(comments, "b") == 6
    assert _resolve_since(comments, 5) == 5
    assert _resolve_since(comments, "gone") == 0
