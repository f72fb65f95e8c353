"""AMF0: exact bytes, round trips, limits."""

from __future__ import annotations

import math
import struct

import pytest

from ingest.rtmp import amf0
from ingest.rtmp.amf0 import UNDEFINED, AmfDate, EcmaArray
from ingest.rtmp.errors import AmfError


def test_exact_bytes_of_a_connect_like_command() -> None:
    data = amf0.encode("connect", 1, {"app": "live"}, None, True)
    assert data == (
        b"\x02\x00\x07connect"
        + b"\x00" + struct.pack(">d", 1.0)
        + b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09"
        + b"\x05"
        + b"\x01\x01"
    )
    assert amf0.decode_all(data) == ["connect", 1.0, {"app": "live"}, None, True]


@pytest.mark.parametrize("value", [
    0.0, -1.5, 1e300, "", "héllo ✓", "x" * 70000, True, False, None, UNDEFINED,
    {"a": 1.0, "nested": {"b": [1.0, "two", None]}},
    EcmaArray({"width": 320.0, "height": 240.0}),
    [], [1.0, [2.0, [3.0]]],
    AmfDate(1_700_000_000_000.0, -60),
])
def test_round_trip(value: object) -> None:
    encoded = amf0.encode_value(value)
    decoded, end = amf0.decode_value(encoded)
    assert end == len(encoded)
    assert decoded == value
    assert type(decoded) is type(value) or isinstance(value, (int, float))
    assert amf0.encode_value(decoded) == encoded  # byte-exact


def test_long_string_marker_used_above_65535_bytes() -> None:
    assert amf0.encode_value("x" * 65535)[0] == amf0.STRING
    assert amf0.encode_value("x" * 65536)[0] == amf0.LONG_STRING


def test_nan_survives() -> None:
    value, _ = amf0.decode_value(amf0.encode_value(float("nan")))
    assert math.isnan(value)


def _nested_objects(depth: int) -> bytes:
    return b"\x03\x00\x01a" * depth + b"\x05" + b"\x00\x00\x09" * depth


@pytest.mark.parametrize("data", [
    _nested_objects(10_000),
    b"\x0a\x00\x00\x00\x01" * 10_000 + b"\x05",
    b"\x08\x00\x00\x00\x01\x00\x01a" * 10_000 + b"\x05",
], ids=["object", "strict-array", "ecma-array"])
def test_nesting_10000_deep_is_a_clean_error(data: bytes) -> None:
    with pytest.raises(AmfError) as info:
        amf0.decode_all(data)
    assert str(info.value) == "AMF0 value is nested deeper than 64 levels"
    assert info.value.code == "amf_depth"


def test_nesting_at_the_limit_is_fine() -> None:
    value, _ = amf0.decode_value(_nested_objects(63))
    for _ in range(63):
        value = value["a"]
    assert value is None


def test_encoding_too_deep_is_refused() -> None:
    value: object = None
    for _ in range(100):
        value = [value]
    with pytest.raises(AmfError):
        amf0.encode_value(value)


@pytest.mark.parametrize("data, message", [
    (b"\x00\x01\x02", "AMF0 number is truncated at offset 1"),
    (b"\x02\x00\x05ab", "AMF0 string is truncated at offset 3"),
    (b"\x03\x00\x01a\x05", "AMF0 object is truncated at offset 5"),
    (b"\x09", "AMF0 object end marker outside an object at offset 0"),
    (b"\x11\x00", "unsupported AMF0 type marker 0x11 at offset 0"),
    (b"\x02\x00\x02\xff\xfe", "AMF0 string at offset 3 is not valid UTF-8"),
    (b"\x0a\xff\xff\xff\xff\x05", "AMF0 strict array is truncated at offset 5"),
])
def test_malformed_values(data: bytes, message: str) -> None:
    with pytest.raises(AmfError) as info:
        amf0.decode_all(data)
    assert str(info.value) == message


def test_ecma_array_without_end_marker_at_end_of_message() -> None:
    data = b"\x08\x00\x00\x00\x01\x00\x01w\x00" + struct.pack(">d", 320.0)
    assert amf0.decode_all(data) == [{"w": 320.0}]
