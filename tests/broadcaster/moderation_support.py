"""Helpers of the host-moderation tests (test_moderation_*): an in-process node with chat and
moderation set up (SQLite/memory or real Redis), real node processes with both set up, and API calls.

Every node sets both up in ``create_app``; the in-process node only adjusts their
options (per-test Redis key prefixes) before it starts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.broadcaster.chat_support import ChatNode, Viewer, require_redis
from tests.support.node import ADMIN_TOKEN, redis_db_url

#: in-process tests share this database; every test uses its own key prefixes
MOD_REDIS_URL = redis_db_url(11)


class ModNode(ChatNode):
    """``ChatNode`` plus ``setup_moderation``."""

    async def start(self, aiohttp_client: Any, **settings: Any) -> "ModNode":
        from broadcaster.app import create_app
        from broadcaster.chat import ChatSettings, setup_chat
        from broadcaster.config import NodeConfig
        from broadcaster.moderation_api import setup_moderation

        redis_url = MOD_REDIS_URL if self.bus_kind == "redis" else ""
        config = NodeConfig(host="127.0.0.1", data_dir=self.tmp_path / "data", admin_token=ADMIN_TOKEN,
                            node_id="node-" + uuid.uuid4().hex[:6], redis_url=redis_url, rtmp_port=0)
        app = create_app(config)
        setup_moderation(app, redis_prefix=self.prefix + "mod:")
        setup_chat(app, settings=ChatSettings(redis_prefix=self.prefix, **{**self.settings, **settings}))
        self.app = app
        self.client = await aiohttp_client(app)
        return self

    async def cleanup(self) -> None:
        if self.bus_kind == "redis":
            import redis.asyncio as aioredis
            r = aioredis.Redis.from_url(MOD_REDIS_URL)
            keys = [k async for k in r.scan_iter(match=self.prefix + "*")]
            # the registry's keys are not prefixed per test: drop this node's broadcasts
            if keys:
                await r.delete(*keys)
            await r.aclose()

    async def call(self, method: str, path: str, token: str | None = ADMIN_TOKEN, json: Any = None,
                   data: bytes | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.request(method, path, json=json, data=data, headers=headers)
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


@pytest.fixture(params=["memory", "redis"])
def mod_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis()
    return request.param


@pytest.fixture
async def mod_node(mod_kind: str, tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[ModNode]:
    node = ModNode(mod_kind, tmp_path)
    await node.start(aiohttp_client)
    yield node
    await node.cleanup()


async def mod_cluster(tmp_path: Path, aiohttp_client: Any) -> tuple[ModNode, ModNode]:
    """Two in-process nodes of one cluster: one Redis, the same key prefixes (``a.cleanup()`` cleans both)."""
    require_redis()
    a = ModNode("redis", tmp_path / "a")
    b = ModNode("redis", tmp_path / "b")
    b.prefix = a.prefix
    await a.start(aiohttp_client)
    await b.start(aiohttp_client)
    return a, b


def mod_path(broadcast_id: str, rest: str) -> str:
    return f"/api/broadcasts/{broadcast_id}/moderation/{rest}"


async def comment_and_wait(author: Viewer, watcher: Viewer, text: str) -> dict[str, Any]:
    """``author`` comments; the comment event as ``watcher`` receives it."""
    await author.comment(text)
    return await watcher.expect("comment", text=text)


# --- real processes ------------------------------------------------------------------------------

@pytest.fixture
def mod_nodes(node_factory: Any) -> Any:
    """Start real ``onair serve`` nodes (options as for ``node_factory``, which stops them)."""
    return node_factory


