"""Any node answers for any broadcast: two node apps on one real Redis, B streaming A's HLS through.

The packager is played by the test (``Packager`` of test_origin_blocking): files in A's data dir and
publishes on A's playlist watch, so a held request on B is seen waiting on A.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from broadcaster import config as node_config
from broadcaster import hls_cache
from broadcaster.app import create_app
from broadcaster.config import ConfigError, NodeConfig
from broadcaster.hls_forward import HOP_HEADER, Forward, Gone, Local, decide
from broadcaster.keys import METRICS, PLAYLIST_WATCH, STORE
from broadcaster.nodes import RedisNodes
from broadcaster.registry import Broadcast, Visibility, hash_token
from tests.broadcaster.test_origin_blocking import BROADCAST, Packager
from tests.support.node import free_port


def _broadcast(origin: str, visibility: Visibility = Visibility.PUBLIC) -> Broadcast:
    return Broadcast(id=BROADCAST, title="t", visibility=visibility, stream_key=f"live_{BROADCAST}_k",
                     host_token_hash=hash_token("host_k"), origin=origin)


def test_where_a_request_is_answered() -> None:
    b = _broadcast("node-a")
    assert decide(b, "node-b", False, "http://10.0.0.1:8080") == Forward("node-a", "http://10.0.0.1:8080")
    assert decide(b, "node-b", False, None) == Gone("node-a")
    assert decide(b, "node-a", False, None) == Local()            # its own
    assert decide(b, "node-b", True, "http://x") == Local()       # ingested here now (a publisher moved)
    assert decide(None, "node-b", False, None) == Local()         # unknown: the gate answers, as for any id
    assert decide(_broadcast(""), "node-b", False, None) == Local()  # never ingested anywhere


@pytest.mark.parametrize("value", ["10.0.0.5:8080", "ftp://a", "http://", "http://a:99999", "http://a/?x=1",
                                   "http://user:pw@a", "javascript:alert(1)"])
def test_public_and_advertise_urls_must_be_plain_base_urls(value: str) -> None:
    for name in ("public_url", "advertise_url"):
        with pytest.raises(ConfigError, match=f"option {name}: "):
            node_config.validate(replace(NodeConfig(), **{name: value}))


def test_the_advertised_url_defaults_to_host_and_port() -> None:
    assert node_config.advertised(NodeConfig(host="10.1.2.3", http_port=81)) == "http://10.1.2.3:81"
    assert node_config.advertised(NodeConfig(host="::1", http_port=81)) == "http://[::1]:81"
    assert node_config.advertised(NodeConfig(advertise_url="http://a:1/")) == "http://a:1"


async def test_the_directory_forgets_a_node_that_stops_renewing(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        a = RedisNodes(redis, "node-a", "http://a:1", ttl=1.0)
        await a.announce()
        assert await a.address("node-a") == "http://a:1"
        assert await a.address("node-z") is None
        await asyncio.sleep(1.2)  # killed: no renewal
        assert await a.address("node-a") is None
        await a.announce()
        await a.withdraw()  # stopped cleanly: gone at once
        assert await a.address("node-a") is None
    finally:
        await redis.aclose()


@dataclass
class Node:
    app: web.Application
    runner: web.AppRunner
    base: str
    #: the broadcast's HLS folder in this node's data dir
    root: Path


async def _start(tmp_path: Path, name: str, redis_url: str, **options: object) -> Node:
    port = free_port()
    config = NodeConfig(host="127.0.0.1", http_port=port, rtmp_port=0, data_dir=tmp_path / name,
                        admin_token="admin_token_for_forward_tests_0123", redis_url=redis_url, node_id=name,
                        advertise_url=f"http://127.0.0.1:{port}", lease_ttl=1.0, **options)
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Node(app, runner, f"http://127.0.0.1:{port}", tmp_path / name / "hls" / BROADCAST)


@pytest.fixture
async def nodes(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[Node, Node]]:
    a = await _start(tmp_path, "node-a", redis_url)
    b = await _start(tmp_path, "node-b", redis_url)
    try:
        yield a, b
    finally:
        await b.runner.cleanup()
        await a.runner.cleanup()


async def test_node_b_streams_node_a_broadcast_through_with_its_cache_headers(nodes) -> None:
    a, b = nodes
    await a.app[STORE].create(_broadcast("node-a"))
    packager = Packager(a.root, a.app[PLAYLIST_WATCH])
    packager.publish(last_msn=11, building_parts=2)
    (a.root / "source" / "init0.mp4").write_bytes(b"init" * 1000)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{b.base}/hls/{BROADCAST}/source/index.m3u8") as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == hls_cache.LIVE_PLAYLIST
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert 'URI="s12.p1.m4s"' in await resp.text()
        async with http.get(f"{b.base}/hls/{BROADCAST}/source/init0.mp4") as resp:
            assert resp.status == 200 and await resp.read() == b"init" * 1000
            assert resp.headers["Cache-Control"] == hls_cache.OBJECT
            assert resp.headers["Content-Type"] == "video/mp4"
            etag = resp.headers["ETag"]
        async with http.get(f"{b.base}/hls/{BROADCAST}/source/init0.mp4", headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304
        # a missing object: A's 404, as A says it
        async with http.get(f"{b.base}/hls/{BROADCAST}/source/s3.p0.m4s") as resp:
            assert resp.status == 404 and resp.headers["Cache-Control"] == "no-cache"
        # names the origin refuses are refused on B before anything is forwarded
        for bad in ("source/..%2f..%2fnode.log", "source/index.exe", "..%2f..%2fonair.db"):
            async with http.get(f"{b.base}/hls/{BROADCAST}/{bad}") as resp:
                assert resp.status == 404, bad
        # a forwarded request is answered where it arrives, never forwarded again (no loops)
        async with http.get(f"{b.base}/hls/{BROADCAST}/source/index.m3u8", headers={HOP_HEADER: "x"}) as resp:
            assert resp.status == 404


async def test_a_blocking_reload_on_b_is_held_on_a_and_answered_when_the_part_is_written(nodes) -> None:
    a, b = nodes
    await a.app[STORE].create(_broadcast("node-a"))
    watch = a.app[PLAYLIST_WATCH]
    packager = Packager(a.root, watch)
    packager.publish(last_msn=11, building_parts=1)
    async with aiohttp.ClientSession() as http:
        reload = asyncio.ensure_future(http.get(f"{b.base}/hls/{BROADCAST}/source/index.m3u8",
                                                params={"_HLS_msn": "12", "_HLS_part": "1"}))
        hinted = asyncio.ensure_future(http.get(f"{b.base}/hls/{BROADCAST}/source/s12.p1.m4s"))
        deadline = time.monotonic() + 5
        while watch.waiting(BROADCAST, "source") < 2:
            assert time.monotonic() < deadline, "the requests through B are not held on A"
            await asyncio.sleep(0.01)
        assert not reload.done() and not hinted.done()
        packager.publish(last_msn=11, building_parts=2)
        resp = await reload
        assert resp.status == 200 and 'URI="s12.p1.m4s"' in await resp.text()
        assert resp.headers["Cache-Control"] == "public, max-age=6"  # by its full query, as long as A would hold it
        part = await hinted
        assert part.status == 200 and await part.read() == b"part 12.1"
        # bad directives are refused by A, and the refusal reaches the viewer as A wrote it
        async with http.get(f"{b.base}/hls/{BROADCAST}/source/index.m3u8", params={"_HLS_msn": "x"}) as resp:
            assert resp.status == 400 and "_HLS_msn must be a decimal integer" in (await resp.json())["error"]


async def test_a_restricted_broadcast_keeps_its_gate_behind_another_node(nodes) -> None:
    a, b = nodes
    await a.app[STORE].create(_broadcast("node-a", Visibility.RESTRICTED))
    Packager(a.root, a.app[PLAYLIST_WATCH]).publish(last_msn=11, building_parts=1)
    async with aiohttp.ClientSession() as http:
        for query in ("", "?grant=nonsense", "?s=1.abc"):
            async with http.get(f"{b.base}/hls/{BROADCAST}/source/index.m3u8{query}") as resp:
                assert resp.status in (401, 403), query
                assert resp.headers["Cache-Control"] == "no-cache"
            async with http.get(f"{b.base}/hls/{BROADCAST}/source/s12.p0.m4s{query}") as resp:
                assert resp.status in (401, 403), query


async def test_a_broadcast_whose_node_is_gone_is_a_quick_404_on_b(nodes, tmp_path: Path) -> None:
    a, b = nodes
    await a.app[STORE].create(_broadcast("node-a"))
    Packager(a.root, a.app[PLAYLIST_WATCH]).publish(last_msn=11, building_parts=1)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{b.base}/hls/{BROADCAST}/source/index.m3u8") as resp:
            assert resp.status == 200
        held = asyncio.ensure_future(http.get(f"{b.base}/hls/{BROADCAST}/source/index.m3u8",
                                              params={"_HLS_msn": "12", "_HLS_part": "1"}))
        await asyncio.sleep(0.2)
        await a.runner.cleanup()  # A stops (its directory entry goes with it)
        started = time.monotonic()
        for path in ("source/index.m3u8", "source/s12.p0.m4s", "master.m3u8"):
            async with http.get(f"{b.base}/hls/{BROADCAST}/{path}") as resp:
                assert resp.status == 404, path
                assert "not served by any live node" in (await resp.json())["error"]
        assert time.monotonic() - started < 2
        counted = dict(re.findall(r'onair_hls_forwarded_total\{outcome="(\w+)"\} ([0-9.]+)',
                                  b.app[METRICS].render().decode()))
        assert float(counted["forwarded"]) >= 1
        # B's route was kept up to a second: the first request may find A refusing, the others find it gone
        assert float(counted.get("gone", 0)) + float(counted.get("unreachable", 0)) == 3, counted
        # the request held on A when it stopped ends too (A answered it or cut it): no hang
        try:
            resp = await asyncio.wait_for(held, 10)
            assert resp.status in (200, 404, 503)
        except aiohttp.ClientError:
            pass
