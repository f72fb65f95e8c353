"""Fixtures and helpers for the RTMP tests: a recording hub (a test double for
the onair node behind the IngestHub protocol), a running RtmpServer, a raw RTMP
client for hand-built byte sequences, and the malformed-input scenarios.

Test modules import helpers as ``tests.ingest.conftest`` so that they work
whether or not ``tests/ingest`` is a package."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from ingest.media import MediaKind, MediaUnit
from ingest.rtmp import RtmpServer, amf0
from ingest.rtmp import messages as msg
from ingest.rtmp.chunk import ChunkDecoder, ChunkEncoder, RtmpMessage
from ingest.source import PublishRefused

GOOD_KEY = "secret-key-123"


@dataclass
class RecordingSink:
    key: str
    remote: str
    units: list[MediaUnit] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    close_reasons: list[str] = field(default_factory=list)
    first_unit: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    #: what the edge gave the hub to drop this publisher
    disconnect: Callable[[], None] | None = None

    def on_metadata(self, metadata: Mapping[str, object]) -> None:
        self.metadata.append(dict(metadata))

    def on_unit(self, unit: MediaUnit) -> None:
        self.units.append(unit)
        self.first_unit.set()

    async def close(self, reason: str) -> None:
        self.close_reasons.append(reason)
        self.closed.set()

    def media(self, kind: MediaKind, config: bool = False) -> list[MediaUnit]:
        return [u for u in self.units if u.kind is kind and u.config is config]


class RecordingHub:
    """Accepts ``GOOD_KEY`` (and any extra keys), one publisher per key at a time."""

    def __init__(self, keys: tuple[str, ...] = (GOOD_KEY,)) -> None:
        self.keys = set(keys)
        self.sinks: list[RecordingSink] = []
        #: refusals the edge reported through record_refusal()
        self.refusals: list[tuple[str, str]] = []
        #: publishes this hub itself refused (code of each PublishRefused)
        self.refused: list[str] = []
        self.opened = asyncio.Event()

    async def open_publish(self, stream_key: str, *, protocol: str, remote: str,
                           disconnect: Callable[[], None] | None = None) -> RecordingSink:
        assert protocol == "rtmp"
        if stream_key not in self.keys:
            self.refused.append("bad_key")
            raise PublishRefused("bad_key", "unknown stream key")
        if any(s.key == stream_key and not s.close_reasons for s in self.sinks):
            self.refused.append("already_live")
            raise PublishRefused("already_live", "this stream key is already live")
        sink = RecordingSink(stream_key, remote, disconnect=disconnect)
        self.sinks.append(sink)
        self.opened.set()
        return sink

    def record_refusal(self, protocol: str, reason: str) -> None:
        self.refusals.append((protocol, reason))

    def sink_for(self, key: str) -> RecordingSink:
        return next(s for s in self.sinks if s.key == key)


@pytest.fixture
def rtmp_hub() -> RecordingHub:
    return RecordingHub()


@pytest.fixture
async def rtmp_server(rtmp_hub: RecordingHub) -> AsyncIterator[RtmpServer]:
    server = RtmpServer(rtmp_hub, port=0, handshake_timeout=5.0, idle_timeout=10.0)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class RawRtmpClient:
    """A hand-driven RTMP client for crafted byte sequences (simple handshake)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.encoder = ChunkEncoder()
        self.decoder = ChunkDecoder()
        self.inbox: list[RtmpMessage] = []

    @classmethod
    async def open(cls, port: int, *, handshake: bool = True) -> RawRtmpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        if handshake:
            await client.handshake()
        return client

    async def handshake(self) -> None:
        c1 = bytes(8) + os.urandom(1528)
        self.writer.write(b"\x03" + c1)
        s0s1s2 = await asyncio.wait_for(self.reader.readexactly(1 + 2 * 1536), 5)
        assert s0s1s2[0] == 3 and s0s1s2[1 + 1536:] == c1
        self.writer.write(s0s1s2[1:1 + 1536])
        await self.writer.drain()

    async def send(self, message: RtmpMessage) -> None:
        self.writer.write(self.encoder.encode(message))
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, name: str, txn: float, obj: Any = None, *args: Any, stream_id: int = 0) -> None:
        await self.send(msg.command(name, txn, obj, *args, csid=3 if stream_id == 0 else 8, stream_id=stream_id))

    async def connect_and_publish(self, key: str) -> None:
        await self.command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live", "type": "nonprivate"})
        await self.wait_for(lambda m: _is_command(m, "_result"))
        await self.command("createStream", 2.0, None)
        await self.wait_for(lambda m: _is_command(m, "_result"))
        await self.command("publish", 3.0, None, key, "live", stream_id=1)

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> RtmpMessage:
        async def scan() -> RtmpMessage:
            while True:
                for i, m in enumerate(self.inbox):
                    if predicate(m):
                        return self.inbox.pop(i)
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("server closed the connection")
                self.inbox.extend(self.decoder.feed(data))
        return await asyncio.wait_for(scan(), timeout)

    async def wait_status(self, timeout: float = 5.0) -> dict[str, Any]:
        m = await self.wait_for(lambda m: _is_command(m, "onStatus"), timeout)
        return amf0.decode_all(m.payload)[3]

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection (reads until EOF)."""
        async def drain() -> None:
            while await self.reader.read(65536):
                pass
        try:
            await asyncio.wait_for(drain(), timeout)
        except ConnectionResetError:
            pass
        return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def _is_command(m: RtmpMessage, name: str) -> bool:
    if m.type_id != msg.COMMAND_AMF0:
        return False
    values = amf0.decode_all(m.payload)
    return bool(values) and values[0] == name


# -- malformed input, shared by test_rtmp_server and test_rtmp_clients --------

async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def nested_connect(depth: int) -> bytes:
    return amf0.encode("connect", 1.0) + b"\x03\x00\x01a" * depth + b"\x05" + b"\x00\x00\x09" * depth


def _set_chunk_size_raw(value: int) -> bytes:
    return b"\x02" + bytes(3) + (4).to_bytes(3, "big") + b"\x01" + bytes(4) + value.to_bytes(4, "big")


async def case_garbage(port: int) -> RawRtmpClient:
    client = await RawRtmpClient.open(port, handshake=False)
    await client.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return client


async def case_truncated(port: int) -> RawRtmpClient:
    client = await RawRtmpClient.open(port)
    connect = ChunkEncoder().encode(msg.command("connect", 1.0, {"app": "live"}))
    await client.send_raw(connect[:20])
    await client.close()
    return client


async def case_chunk_size_zero(port: int) -> RawRtmpClient:
    client = await RawRtmpClient.open(port)
    await client.send_raw(_set_chunk_size_raw(0))
    return client


async def case_chunk_size_2_31(port: int) -> RawRtmpClient:
    client = await RawRtmpClient.open(port)
    await client.send_raw(_set_chunk_size_raw(1 << 31))
    return client


async def case_amf_deep(port: int) -> RawRtmpClient:
    client = await RawRtmpClient.open(port)
    # 1,000 levels in 7 KB: within the few KiB a connection may send before its publish is accepted
    await client.send(RtmpMessage(3, msg.COMMAND_AMF0, 0, 0, nested_connect(1_000)))
    return client


async def case_amf_deep_large(port: int) -> RawRtmpClient:
    client = await RawRtmpClient.open(port)
    await client.send(RtmpMessage(3, msg.COMMAND_AMF0, 0, 0, nested_connect(10_000)))
    return client


async def case_huge_message(port: int) -> RawRtmpClient:
    client = await RawRtmpClient.open(port)
    # "50 MB": the 24-bit length field tops out at 16 MiB - 1, which is what we claim.
    await client.send_raw(b"\x03" + bytes(3) + b"\xff\xff\xff" + b"\x14" + bytes(4) + b"\x02")
    return client


#: name -> (scenario, refusal code, exact text in the log line)
MALFORMED: dict[str, tuple[Callable[[int], Awaitable[RawRtmpClient]], str, str]] = {
    "garbage-handshake": (case_garbage, "bad_handshake", "unsupported RTMP version byte 0x47 (expected 0x03)"),
    "truncated-chunk": (case_truncated, "truncated", "connection closed in the middle of a chunk"),
    "chunk-size-0": (case_chunk_size_zero, "bad_chunk_size", "chunk size 0 is out of range (1..2147483647)"),
    "chunk-size-2^31": (case_chunk_size_2_31, "bad_chunk_size",
                        "chunk size 2147483648 is out of range (1..2147483647)"),
    "amf0-1000-deep": (case_amf_deep, "amf_depth", "AMF0 value is nested deeper than 64 levels"),
    # 70 KB of connect command: refused at its header, before any of it is buffered
    "amf0-10000-deep": (case_amf_deep_large, "message_too_large",
                        "message length 70020 exceeds the limit of 8192 bytes before the publish is accepted"),
    "huge-message-length": (case_huge_message, "message_too_large",
                            "message length 16777215 exceeds the limit of 8192 bytes before the publish is "
                            "accepted"),
}


async def run_malformed(name: str, port: int, hub: RecordingHub, caplog: pytest.LogCaptureFixture) -> None:
    """Run one malformed case and assert: connection closed, one log line, one refusal."""
    scenario, code, text = MALFORMED[name]
    before = len(hub.refusals)
    client = await scenario(port)
    if name != "truncated-chunk":
        assert await client.closed_by_server()
        await client.close()
    await wait_until(lambda: len(hub.refusals) > before)
    assert hub.refusals[before:] == [("rtmp", code)]
    lines = [r.getMessage() for r in caplog.records if r.name == "onair.rtmp" and text in r.getMessage()]
    assert len(lines) == 1, lines
    assert f"({code})" in lines[0] and "127.0.0.1:" in lines[0]
