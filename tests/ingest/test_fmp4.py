"""The fMP4 box splitter: whole boxes out, whatever the write sizes, and bounded."""

from __future__ import annotations

import struct

import pytest

from ingest.hls.fmp4 import BoxError, BoxSplitter


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_boxes_come_out_whole_whatever_the_chunking():
    stream = box(b"ftyp", b"cmfc") + box(b"moov", b"x" * 100) + box(b"moof", b"y" * 50) + box(b"mdat", b"z" * 1000)
    for step in (1, 7, 64, len(stream)):
        splitter = BoxSplitter()
        out = []
        for i in range(0, len(stream), step):
            out += splitter.feed(stream[i:i + step])
        assert [kind for kind, _ in out] == [b"ftyp", b"moov", b"moof", b"mdat"]
        assert b"".join(data for _, data in out) == stream
        assert splitter.buffered == 0


def test_64_bit_sizes_are_read():
    payload = b"q" * 20
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + len(payload)) + payload
    assert BoxSplitter().feed(large) == [(b"mdat", large)]


@pytest.mark.parametrize("data, message", [
    (struct.pack(">I4s", 0, b"mdat"), "end of the stream"),
    (struct.pack(">I4s", 4, b"moof"), "impossible size"),
    (struct.pack(">I4s", 1 << 30, b"mdat"), "bound"),
])
def test_bad_sizes_are_refused_with_a_clear_error(data, message):
    with pytest.raises(BoxError, match=message):
        BoxSplitter(max_box=1 << 20).feed(data)
