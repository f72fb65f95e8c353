"""Shared fixtures and helpers of the chat relay tests (test_bus_*, test_chat_*),
imported explicitly by those modules so the other tests here are untouched: an in-process node app on the memory or the
real Redis bus (the same tests run on both), real node processes for the
multi-node tests, and small WebSocket client helpers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from broadcaster.chat import NoModeration
from tests.support.node import ADMIN_TOKEN, TEST_REDIS_PORT, NodeProcess, free_port, redis_db_url, redis_up

REDIS_URL = redis_db_url(12)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_redis() -> None:
    if not redis_up():
        if IN_CI:
            pytest.fail(f"no Redis answering on 127.0.0.1:{TEST_REDIS_PORT}")
        pytest.skip(f"no Redis answering on 127.0.0.1:{TEST_REDIS_PORT}")


@pytest.fixture(params=["memory", "redis"])
def bus_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis()
    return request.param


@pytest.fixture
async def chat_node(bus_kind: str, tmp_path: Path, aiohttp_client: Any) -> AsyncIterator["ChatNode"]:
    node = ChatNode(bus_kind, tmp_path)
    yield await node.start(aiohttp_client)
    await node.cleanup()


class ChatNode:
    """An in-process node app with the chat set up, driven through aiohttp's test client."""

    def __init__(self, bus_kind: str, tmp_path: Path, **settings: Any) -> None:
        self.bus_kind = bus_kind
        self.tmp_path = tmp_path
        self.prefix = f"test:{uuid.uuid4().hex[:10]}:"
        self.settings = settings
        self.client: Any = None

    async def start(self, aiohttp_client: Any, **settings: Any) -> "ChatNode":
        from broadcaster.app import create_app
        from broadcaster.chat import ChatSettings, setup_chat
        from broadcaster.config import NodeConfig

        # rtmp_port=0: an ephemeral port, not 1935 (another checkout's tests may hold it on a shared machine)
        config = NodeConfig(host="127.0.0.1", data_dir=self.tmp_path / "data", admin_token=ADMIN_TOKEN,
                            node_id="node-test", redis_url=REDIS_URL if self.bus_kind == "redis" else "",
                            rtmp_port=0)
        app = create_app(config)
        # the relay on its own: moderation (which rate-limits too) is tested in test_moderation_*
        setup_chat(app, moderator=NoModeration(),
                   settings=ChatSettings(redis_prefix=self.prefix, **{**self.settings, **settings}))
        self.app = app
        self.client = await aiohttp_client(app)
        return self

    @property
    def relay(self) -> Any:
        from broadcaster.chat import CHAT_RELAY
        return self.app[CHAT_RELAY]

    async def cleanup(self) -> None:
        if self.bus_kind == "redis":
            import redis.asyncio as aioredis
            r = aioredis.Redis.from_url(REDIS_URL)
            keys = [k async for k in r.scan_iter(match=self.prefix + "*")]
            if keys:
                await r.delete(*keys)
            await r.aclose()

    async def create_broadcast(self, visibility: str = "public") -> dict[str, Any]:
        resp = await self.client.post("/api/broadcasts", json={"title": "chat test", "visibility": visibility},
                                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert resp.status == 201, await resp.text()
        return await resp.json()

    def ws_url(self, broadcast_id: str) -> str:
        return f"ws://127.0.0.1:{self.client.port}/ws/{broadcast_id}"

    async def viewer(self, broadcast_id: str, **hello: Any) -> "Viewer":
        ws = await self.client.ws_connect(f"/ws/{broadcast_id}", max_msg_size=0)
        viewer = Viewer(ws)
        if hello is not None:
            await viewer.hello(**hello)
        return viewer


class Viewer:
    """A WebSocket chat client that collects every event it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._cursor = 0

    async def hello(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("name", "tester") if "token" not in fields else None
        await self.send({"type": "hello", **fields})
        return await self.expect("history")

    async def send(self, doc: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(doc))

    async def comment(self, text: str, question: bool = False) -> None:
        await self.send({"type": "comment", "text": text, "question": question})

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        if self._cursor < len(self.events):
            self._cursor += 1
            return self.events[self._cursor - 1]
        msg = await self.ws.receive(timeout=timeout)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionClosed(msg.type, self.ws.close_code)
        doc = json.loads(msg.data)
        self.events.append(doc)
        self._cursor += 1
        return doc

    async def expect(self, kind: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind!r} event {match} in {timeout} s; got {[e.get('type') for e in self.events[-20:]]}")
            doc = await self.next(timeout=left)
            if doc.get("type") == kind and all(doc.get(k) == v for k, v in match.items()):
                return doc

    async def viewers(self, count: int, timeout: float = 10.0) -> None:
        """Until the viewer count shown is ``count``: the latest ``viewers`` event received, or a new one
        (a count reached while the test waited for something else is not waited for again)."""
        shown = [e["count"] for e in self.events if e.get("type") == "viewers"]
        if shown and shown[-1] == count:
            return
        await self.expect("viewers", timeout=timeout, count=count)

    async def comments_until(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Live comment events (in arrival order) until ``count`` have arrived."""
        seen: list[dict[str, Any]] = [e for e in self.events if e.get("type") == "comment"]
        self._cursor = len(self.events)
        while len(seen) < count:
            seen.append(await self.expect("comment", timeout=timeout))
        return seen

    async def closed(self, timeout: float = 10.0) -> int | None:
        """Read until the server closes; the close code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = await self.ws.receive(timeout=deadline - time.monotonic())
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                            aiohttp.WSMsgType.ERROR):
                return self.ws.close_code
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.events.append(json.loads(msg.data))
        raise AssertionError("server did not close the socket")

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "error"]


class ConnectionClosed(Exception):
    pass


# --- real node processes ---------------------------------------------------------------

@pytest.fixture
def chat_nodes(node_factory: Any, tmp_path: Path) -> Any:
    """Start real ``onair serve`` processes by id on a given Redis (stopped by ``node_factory``)."""

    def start(redis_url: str, node_id: str, **options: Any) -> NodeProcess:
        return node_factory(data_dir=tmp_path / node_id, redis_url=redis_url, node_id=node_id, log_level="info",
                            **options)

    return start


class RedisServer:
    """A private redis-server on a free port, for restart tests."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not redis_up(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    import shutil
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


async def connect(url: str, session: aiohttp.ClientSession, **hello: Any) -> Viewer:
    ws = await session.ws_connect(url, max_msg_size=0)
    viewer = Viewer(ws)
    await viewer.hello(**hello)
    return viewer


#: loopback addresses tests connect from, to stand for viewers on different networks
SOURCES = tuple(f"127.0.0.{i}" for i in range(2, 9))


class Sources:
    """Client sessions whose sockets come from given loopback addresses (127.0.0.x)."""

    def __init__(self) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def session(self, source: str) -> aiohttp.ClientSession:
        if source not in self._sessions:
            self._sessions[source] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0),
                                                                                         limit=0))
        return self._sessions[source]

    async def socket(self, url: str, source: str) -> Viewer:
        """A socket from ``source`` that has not said hello."""
        return Viewer(await self.session(source).ws_connect(url, max_msg_size=0))

    async def viewer(self, url: str, source: str, **hello: Any) -> Viewer:
        return await connect(url, self.session(source), **hello)

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()


@pytest.fixture
async def sources() -> AsyncIterator[Sources]:
    s = Sources()
    yield s
    await s.close()


async def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
