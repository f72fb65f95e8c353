"""AMF0 (Action Message Format 0) decode and encode, pure and bounded.

Python mapping: number ↔ float (ints encode as numbers), boolean ↔ bool,
string/long string ↔ str, object ↔ dict, ECMA array ↔ :class:`EcmaArray`
(a dict), strict array ↔ list, null ↔ None, undefined ↔ :data:`UNDEFINED`,
date ↔ :class:`AmfDate`.  Object end (0x09) only terminates objects.

Nesting is limited (``MAX_DEPTH``): a hostile value nested thousands deep
raises :class:`AmfError` instead of exhausting the interpreter's stack.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ingest.rtmp.errors import AmfError

MAX_DEPTH = 64

NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
NULL = 0x05
UNDEFINED_MARKER = 0x06
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
DATE = 0x0B
LONG_STRING = 0x0C

_DOUBLE = struct.Struct(">d")


class _Undefined:
    """The AMF0 ``undefined`` value (distinct from ``null``/None)."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


class EcmaArray(dict[str, Any]):
    """An AMF0 ECMA array (associative array, e.g. onMetaData's payload)."""


@dataclass(frozen=True, slots=True)
class AmfDate:
    """An AMF0 date: milliseconds since the epoch (UTC) and a time zone field."""

    milliseconds: float
    timezone: int = 0


def decode_all(data: bytes, max_depth: int = MAX_DEPTH) -> list[Any]:
    """Decode every value in ``data`` (a command or data message body)."""
    values = []
    offset = 0
    while offset < len(data):
        value, offset = decode_value(data, offset, max_depth)
        values.append(value)
    return values


def decode_value(data: bytes, offset: int = 0, max_depth: int = MAX_DEPTH) -> tuple[Any, int]:
    """Decode one value at ``offset``; return it and the offset after it."""
    return _Decoder(data, max_depth).value(offset, 1)


class _Decoder:
    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.max_depth = max_depth

    def _need(self, offset: int, size: int, what: str) -> None:
        if offset + size > len(self.data):
            raise AmfError(f"AMF0 {what} is truncated at offset {offset}", "bad_amf")

    def _string(self, offset: int, size_bytes: int, what: str) -> tuple[str, int]:
        self._need(offset, size_bytes, what)
        size = int.from_bytes(self.data[offset:offset + size_bytes], "big")
        offset += size_bytes
        self._need(offset, size, what)
        try:
            text = self.data[offset:offset + size].decode("utf-8")
        except UnicodeDecodeError:
            raise AmfError(f"AMF0 {what} at offset {offset} is not valid UTF-8", "bad_amf") from None
        return text, offset + size

    def value(self, offset: int, depth: int) -> tuple[Any, int]:
        if depth > self.max_depth:
            raise AmfError(f"AMF0 value is nested deeper than {self.max_depth} levels", "amf_depth")
        self._need(offset, 1, "value")
        marker = self.data[offset]
        offset += 1
        if marker == NUMBER:
            self._need(offset, 8, "number")
            return _DOUBLE.unpack_from(self.data, offset)[0], offset + 8
        if marker == BOOLEAN:
            self._need(offset, 1, "boolean")
            return self.data[offset] != 0, offset + 1
        if marker == STRING:
            return self._string(offset, 2, "string")
        if marker == LONG_STRING:
            return self._string(offset, 4, "long string")
        if marker == NULL:
            return None, offset
        if marker == UNDEFINED_MARKER:
            return UNDEFINED, offset
        if marker == OBJECT:
            obj: dict[str, Any] = {}
            return obj, self._properties(offset, depth, obj, ecma=False)
        if marker == ECMA_ARRAY:
            self._need(offset, 4, "ECMA array")
            array = EcmaArray()
            # The count is advisory (encoders get it wrong); the end marker decides.
            return array, self._properties(offset + 4, depth, array, ecma=True)
        if marker == STRICT_ARRAY:
            self._need(offset, 4, "strict array")
            count = int.from_bytes(self.data[offset:offset + 4], "big")
            offset += 4
            # Each element takes at least one byte: refuse impossible counts early.
            self._need(offset, count, "strict array")
            items = []
            for _ in range(count):
                item, offset = self.value(offset, depth + 1)
                items.append(item)
            return items, offset
        if marker == DATE:
            self._need(offset, 10, "date")
            ms = _DOUBLE.unpack_from(self.data, offset)[0]
            tz = int.from_bytes(self.data[offset + 8:offset + 10], "big", signed=True)
            return AmfDate(ms, tz), offset + 10
        if marker == OBJECT_END:
            raise AmfError(f"AMF0 object end marker outside an object at offset {offset - 1}", "bad_amf")
        raise AmfError(f"unsupported AMF0 type marker 0x{marker:02x} at offset {offset - 1}", "bad_amf")

    def _properties(self, offset: int, depth: int, target: dict[str, Any], *, ecma: bool) -> int:
        what = "ECMA array" if ecma else "object"
        while True:
            if ecma and offset == len(self.data):
                return offset  # some encoders omit the end marker of a trailing ECMA array
            self._need(offset, 3, what)
            if self.data[offset] == 0 and self.data[offset + 1] == 0 and self.data[offset + 2] == OBJECT_END:
                return offset + 3
            key, offset = self._string(offset, 2, f"{what} key")
            value, offset = self.value(offset, depth + 1)
            target[key] = value


def encode(*values: Any) -> bytes:
    """Encode values one after another (a command or data message body)."""
    return b"".join(encode_value(v) for v in values)


def encode_value(value: Any, _depth: int = 1) -> bytes:
    """Encode one Python value as AMF0."""
    if _depth > MAX_DEPTH:
        raise AmfError(f"AMF0 value is nested deeper than {MAX_DEPTH} levels", "amf_depth")
    if value is None:
        return bytes([NULL])
    if value is UNDEFINED:
        return bytes([UNDEFINED_MARKER])
    if isinstance(value, bool):
        return bytes([BOOLEAN, 1 if value else 0])
    if isinstance(value, (int, float)):
        return bytes([NUMBER]) + _DOUBLE.pack(float(value))
    if isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            return bytes([STRING]) + len(raw).to_bytes(2, "big") + raw
        return bytes([LONG_STRING]) + len(raw).to_bytes(4, "big") + raw
    if isinstance(value, AmfDate):
        return bytes([DATE]) + _DOUBLE.pack(value.milliseconds) + value.timezone.to_bytes(2, "big", signed=True)
    if isinstance(value, dict):
        head = bytes([ECMA_ARRAY]) + len(value).to_bytes(4, "big") if isinstance(value, EcmaArray) else bytes([OBJECT])
        parts = [head]
        for key, item in value.items():
            raw_key = str(key).encode("utf-8")
            if len(raw_key) > 0xFFFF:
                raise AmfError("AMF0 property name is longer than 65535 bytes", "bad_amf")
            parts.append(len(raw_key).to_bytes(2, "big") + raw_key)
            parts.append(encode_value(item, _depth + 1))
        parts.append(b"\x00\x00" + bytes([OBJECT_END]))
        return b"".join(parts)
    if isinstance(value, (list, tuple)):
        return bytes([STRICT_ARRAY]) + len(value).to_bytes(4, "big") + b"".join(
            encode_value(item, _depth + 1) for item in value)
    raise TypeError(f"cannot encode {type(value).__name__} as AMF0")
