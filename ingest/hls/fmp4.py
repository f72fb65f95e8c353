"""Splitting an ISO BMFF (fMP4/CMAF) byte stream into its top-level boxes.

Pure: bytes in, ``(type, box bytes)`` out.  The packager feeds it what the mp4
muxer writes and groups the boxes into the init section (``ftyp`` + ``moov``)
and fragments (``moof`` + ``mdat``).  Sizes are checked against a bound so a
muxer bug cannot make it buffer without limit.
"""

from __future__ import annotations

import struct

#: the largest box accepted (a fragment's mdat of one part at a high bitrate is far below)
MAX_BOX = 64 << 20


class BoxError(ValueError):
    pass


class BoxSplitter:
    def __init__(self, max_box: int = MAX_BOX) -> None:
        self._buffer = bytearray()
        self._max_box = max_box

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """Add bytes; return every box completed by them, in order."""
        self._buffer += data
        boxes: list[tuple[bytes, bytes]] = []
        offset = 0
        buffer = self._buffer
        while len(buffer) - offset >= 8:
            size, kind = struct.unpack_from(">I4s", buffer, offset)
            header = 8
            if size == 1:
                if len(buffer) - offset < 16:
                    break
                (size,) = struct.unpack_from(">Q", buffer, offset + 8)
                header = 16
            elif size == 0:
                raise BoxError(f"box {kind!r} extends to the end of the stream: not supported in a live stream")
            if size < header:
                raise BoxError(f"box {kind!r} has an impossible size {size}")
            if size > self._max_box:
                raise BoxError(f"box {kind!r} of {size} bytes is over the {self._max_box} byte bound")
            if len(buffer) - offset < size:
                break
            boxes.append((bytes(kind), bytes(buffer[offset:offset + size])))
            offset += size
        if offset:
            del buffer[:offset]
        return boxes
