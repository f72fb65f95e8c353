"""Two real ``onair serve`` processes sharing one real Redis: the issue 3 acceptance."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from collections.abc import Iterator

import aiohttp
import pytest
import redis

from broadcaster.bus import RedisBus
from broadcaster.chat import HostActions

from tests.broadcaster.chat_support import (RedisServer, chat_nodes, connect, private_redis,  # noqa: F401
                                            require_redis)
from tests.support.node import redis_db_url

pytestmark = pytest.mark.e2e

CLUSTER_DB_URL = redis_db_url(13)


@pytest.fixture
def cluster_redis() -> Iterator[str]:
    require_redis()
    client = redis.Redis.from_url(CLUSTER_DB_URL)
    client.flushdb()
    yield CLUSTER_DB_URL
    client.flushdb()
    client.close()


async def test_comments_reactions_and_viewers_across_two_nodes(chat_nodes, cluster_redis: str) -> None:
    # 50 viewers from one address here stand for 50 people: no per-address reaction quota
    node_a = chat_nodes(cluster_redis, "node-a", chat_reactions_per_address=0)
    node_b = chat_nodes(cluster_redis, "node-b", chat_reactions_per_address=0)
    broadcast = node_a.create_broadcast("cluster")
    bid = broadcast["id"]
    async with aiohttp.ClientSession() as session:
        on_a = [await connect(f"{node_a.ws_base}/ws/{bid}", session, name=f"a{i}") for i in range(25)]
        on_b = [await connect(f"{node_b.ws_base}/ws/{bid}", session, name=f"b{i}") for i in range(25)]
        everyone = on_a + on_b

        # comments from both nodes at once: same order everywhere
        await asyncio.gather(*(v.comment(f"from {name} {i}") for i in range(3)
                               for v, name in ((on_a[0], "A"), (on_b[0], "B"))))
        orders = [[c["id"] for c in await v.comments_until(6)] for v in everyone]
        assert all(order == orders[0] for order in orders)
        first_seen = (await on_b[5].comments_until(6))
        assert sorted(c["text"] for c in first_seen) == sorted(f"from {n} {i}" for n in "AB" for i in range(3))
        assert [c["seq"] for c in first_seen] == sorted(c["seq"] for c in first_seen)

        # a host action from anywhere (here: a relay in this process on the same Redis)
        # removes a comment from every screen on every node and from history
        host_bus = RedisBus(cluster_redis)
        await host_bus.start()
        try:
            await HostActions(host_bus).remove_comment(bid, orders[0][2])
        finally:
            await host_bus.close()
        for v in everyone:
            assert (await v.expect("comment_removed", timeout=10))["id"] == orders[0][2]
        late = await connect(f"{node_b.ws_base}/ws/{bid}", session, name="late")
        assert [c["id"] for c in late.events[0]["comments"]] == orders[0][:2] + orders[0][3:]
        await late.ws.close()

        # a burst of 1,000 likes from 50 viewers on both nodes
        await asyncio.gather(*(v.send({"type": "react", "kind": "like"}) for v in everyone for _ in range(20)))
        for v in everyone:
            final = await v.expect("reactions", timeout=15, totals={"like": 1000})
            assert final["totals"] == {"like": 1000}
        for v in everyone:
            # nothing double-counted: the per-tick deltas a client saw add up to the total
            deltas = sum(e["counts"].get("like", 0) for e in v.events if e["type"] == "reactions")
            assert deltas == 1000
            assert not v.errors()

        # the viewer count covers both nodes
        for v in (on_a[0], on_b[0]):
            await v.viewers(50)
        await asyncio.gather(*(v.ws.close() for v in on_b[:10]))
        for v in (on_a[0], on_b[-1]):
            await v.viewers(40)
        await asyncio.gather(*(v.ws.close() for v in everyone[10:] if not v.ws.closed))
    assert node_a.alive() and node_b.alive()


async def test_one_identity_on_two_nodes_is_one_viewer_and_its_ban_holds_on_both(chat_nodes,
                                                                                  cluster_redis: str) -> None:
    node_a = chat_nodes(cluster_redis, "node-a")
    node_b = chat_nodes(cluster_redis, "node-b")
    broadcast = node_a.create_broadcast("identities")
    bid = broadcast["id"]
    async with aiohttp.ClientSession() as session:
        ann = await connect(f"{node_a.ws_base}/ws/{bid}", session, name="ann")
        you = ann.events[0]["you"]
        # ann's identity: two sockets on A, one on B (the same id on both nodes); bob on B
        tabs = [ann, await connect(f"{node_a.ws_base}/ws/{bid}", session, name="ann", token=you["token"]),
                await connect(f"{node_b.ws_base}/ws/{bid}", session, name="ann", token=you["token"])]
        assert {t.events[0]["you"]["id"] for t in tabs} == {you["id"]}
        bob = await connect(f"{node_b.ws_base}/ws/{bid}", session, name="bob")
        for viewer in (tabs[0], bob):
            await viewer.viewers(2)  # 4 sockets, 2 viewers, on both nodes
        await asyncio.sleep(2.5)  # a few presence rounds later the count still holds
        assert [e["count"] for e in bob.events if e["type"] == "viewers"][-1] == 2

        # the host bans ann through node A: her socket on B closes, and she cannot come back on B
        status, _ = node_a.request("POST", f"/api/broadcasts/{bid}/moderation/viewers/{you['id']}/ban",
                                   {"reason": "spam"}, token=broadcast["host_token"])
        assert status == 200
        for tab in tabs:
            assert await tab.closed(timeout=10) == 4003
        again = await session.ws_connect(f"{node_b.ws_base}/ws/{bid}")
        await again.send_json({"type": "hello", "name": "ann", "token": you["token"]})
        assert (await again.receive_json(timeout=10))["code"] == "banned"
        assert (await again.receive(timeout=10)).data == 4003
        await bob.viewers(1)
        await bob.ws.close()


async def test_redis_restart_both_nodes_reconnect(chat_nodes, private_redis: RedisServer) -> None:
    node_a = chat_nodes(private_redis.url, "node-a")
    node_b = chat_nodes(private_redis.url, "node-b")
    bid = node_a.create_broadcast("restart")["id"]
    async with aiohttp.ClientSession() as session:
        alice = await connect(f"{node_a.ws_base}/ws/{bid}", session, name="alice")
        bob = await connect(f"{node_b.ws_base}/ws/{bid}", session, name="bob")
        await alice.comment("before the restart")
        assert (await bob.expect("comment"))["text"] == "before the restart"

        private_redis.kill()
        await asyncio.sleep(1.0)
        private_redis.start()
        back = time.monotonic()
        # Comments flow again within 5 s of Redis answering, in both directions.
        delivered_ab = delivered_ba = False
        i = 0
        while not (delivered_ab and delivered_ba):
            assert time.monotonic() - back < 5.0, (f"comments did not flow again within 5 s (a->b {delivered_ab}, "
                                                   f"b->a {delivered_ba}); node logs:\n{_tail(node_a, node_b)}")
            i += 1
            if not delivered_ab:
                await alice.comment(f"a after {i}")
            if not delivered_ba:
                await bob.comment(f"b after {i}")
            end = time.monotonic() + 0.4
            while time.monotonic() < end and not (delivered_ab and delivered_ba):
                for viewer, prefix in ((bob, "a after"), (alice, "b after")):
                    try:
                        event = await viewer.next(timeout=0.05)
                    except asyncio.TimeoutError:
                        continue
                    if event.get("type") == "comment" and event["text"].startswith(prefix):
                        if prefix == "a after":
                            delivered_ab = True
                        else:
                            delivered_ba = True
        assert not alice.ws.closed and not bob.ws.closed  # viewers stayed connected
    assert node_a.alive() and node_b.alive()
    logs = node_a.log() + node_b.log()
    assert "Traceback" not in logs, logs[max(0, logs.index("Traceback") - 500):][:4000]


def _tail(*nodes: Any) -> str:
    """The last lines of each node's log (what a failure needs to be understood)."""
    return "\n".join(f"--- {i}\n" + "\n".join(node.log().splitlines()[-40:]) for i, node in enumerate(nodes))
