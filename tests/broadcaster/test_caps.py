"""Per-node and per-address caps (broadcaster/caps.py): the counting itself, then over real HTTP
from several loopback addresses: held LL-HLS requests, requests in progress, WebSockets, and the
``/metrics`` series that count them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from broadcaster.app import create_app
from broadcaster.caps import ADDRESS_LIMIT, NODE_LIMIT, Slots
from broadcaster.caps import CAPS as CAPS_KEY
from broadcaster.config import NodeConfig
from broadcaster.keys import PLAYLIST_WATCH
from tests.broadcaster.test_origin_blocking import BROADCAST, Packager
from tests.support.registry import register

ADMIN = "admin_caps_test_token_0123456789"


# -- the counting -------------------------------------------------------------------------

def test_slots_cap_per_address_and_per_node() -> None:
    refused: list[tuple[str, str]] = []
    slots = Slots("http", per_node=3, per_address=2, refused=lambda kind, reason: refused.append((kind, reason)))
    assert slots.enter("127.0.0.2") is None and slots.enter("127.0.0.2") is None
    assert slots.enter("127.0.0.2") == ADDRESS_LIMIT
    assert slots.enter("127.0.0.3") is None
    assert slots.enter("127.0.0.4") == NODE_LIMIT  # the node is full: anyone is refused
    assert refused == [("http", ADDRESS_LIMIT), ("http", NODE_LIMIT)]
    slots.leave("127.0.0.2")
    assert slots.enter("127.0.0.4") is None
    assert slots.held == 3 and slots.addresses == 3


def test_ipv6_addresses_count_per_64_and_state_goes_with_the_last_slot() -> None:
    slots = Slots("ws", per_node=0, per_address=2)
    assert slots.enter("2001:db8:1:2::1") is None
    assert slots.enter("2001:db8:1:2:ffff::9") is None
    assert slots.enter("2001:db8:1:2::77") == ADDRESS_LIMIT  # the same /64
    assert slots.enter("2001:db8:1:3::1") is None
    for address in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"):
        slots.leave(address)
    assert slots.held == 0 and slots.addresses == 0
    with pytest.raises(RuntimeError):
        slots.leave("2001:db8:1:3::1")


def test_zero_turns_a_cap_off() -> None:
    slots = Slots("rtmp", per_node=0, per_address=0)
    assert all(slots.enter("127.0.0.2") is None for _ in range(10_000))


# -- over real HTTP -----------------------------------------------------------------------

@pytest.fixture
async def node(aiohttp_client, tmp_path: Path):
    root = tmp_path / "hls" / BROADCAST
    root.mkdir(parents=True)
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token=ADMIN,
                        http_max_requests_per_address=300, ws_max_connections=3)
    client = await aiohttp_client(create_app(config))
    await register(client.app, BROADCAST)
    source = Packager(root, client.app[PLAYLIST_WATCH])
    source.target_duration = 4.0  # held up to 12 s: longer than the test needs
    source.publish(last_msn=11, building_parts=1)
    return client, source


async def get(port: int, path: str, source_address: str) -> tuple[int, dict[str, str], bytes]:
    """One GET over its own connection from ``source_address`` (a 127.0.0.x of this machine)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source_address, 0))
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def test_a_thousand_held_requests_from_one_client_are_capped_and_others_are_served(node) -> None:
    client, source = node
    port = client.server.port
    watch = client.app[PLAYLIST_WATCH]
    blocking = f"/hls/{BROADCAST}/source/index.m3u8?_HLS_msn=12&_HLS_part=1"
    flood = [asyncio.ensure_future(get(port, blocking, "127.0.0.2")) for _ in range(1000)]
    # every request past the cap is answered at once; the first 64 stay held
    while sum(f.done() for f in flood) < 1000 - 64:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert watch.waiting(BROADCAST, "source") == 64
    refused = [f.result() for f in flood if f.done()]
    assert len(refused) == 936
    for status, headers, body in refused:
        assert status == 503
        assert headers["retry-after"] == "1"
        assert headers["access-control-allow-origin"] == "*"
        assert headers["content-type"].startswith("application/json")
        assert json.loads(body) == {"error": "too many held LL-HLS requests from your network address "
                                             "(at most 64); retry later"}
    # another client: its own blocking reload is held and answered, plain requests at once
    other = asyncio.ensure_future(get(port, blocking, "127.0.0.3"))
    while watch.waiting(BROADCAST, "source") < 65:
        await asyncio.sleep(0.01)
    status, _, body = await get(port, f"/hls/{BROADCAST}/source/index.m3u8", "127.0.0.3")
    assert status == 200 and b"s12.p0.m4s" in body
    assert (await get(port, "/healthz", "127.0.0.4"))[0] == 200
    status, _, text = await get(port, "/metrics", "127.0.0.4")
    metrics = text.decode()
    assert metric(metrics, 'onair_connections_open{kind="hls_held"}') == 65
    assert metric(metrics, 'onair_connections_refused_total{kind="hls_held",reason="address_limit"}') == 936
    source.publish(last_msn=11, building_parts=2)
    status, _, body = await other
    assert status == 200 and b"s12.p1.m4s" in body
    answered = await asyncio.gather(*flood)
    assert sum(1 for status, _, _ in answered if status == 200) == 64
    # every slot was given back
    status, _, text = await get(port, "/metrics", "127.0.0.4")
    assert metric(text.decode(), 'onair_connections_open{kind="hls_held"}') == 0


async def test_the_node_wide_held_cap_refuses_everyone_once_reached(aiohttp_client, tmp_path: Path) -> None:
    root = tmp_path / "hls" / BROADCAST
    root.mkdir(parents=True)
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token=ADMIN,
                        hls_max_held=5, hls_max_held_per_address=3)
    client = await aiohttp_client(create_app(config))
    await register(client.app, BROADCAST)
    source = Packager(root, client.app[PLAYLIST_WATCH])
    source.publish(last_msn=11, building_parts=1)
    port, watch = client.server.port, client.app[PLAYLIST_WATCH]
    part = f"/hls/{BROADCAST}/source/s12.p1.m4s"  # the part after the hint: held too
    held = [asyncio.ensure_future(get(port, part, a)) for a in ("127.0.0.2",) * 3 + ("127.0.0.3",) * 2]
    while watch.waiting(BROADCAST, "source") < 5:
        await asyncio.sleep(0.01)
    status, headers, body = await get(port, part, "127.0.0.4")
    assert status == 503 and headers["retry-after"] == "1"
    assert json.loads(body)["error"] == "this node has too many held LL-HLS requests (at most 5); retry later"
    source.publish(last_msn=11, building_parts=2)
    assert [r[0] for r in await asyncio.gather(*held)] == [200] * 5


async def test_requests_in_progress_are_capped_per_address(aiohttp_client, tmp_path: Path) -> None:
    """A request whose body never comes stays in progress (up to the 30 s body deadline)."""
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token=ADMIN,
                        http_max_requests_per_address=4, http_max_requests=6)
    client = await aiohttp_client(create_app(config))
    port = client.server.port
    stalled = []
    for address in ("127.0.0.2",) * 4 + ("127.0.0.3",) * 2:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
        writer.write(b"POST /api/broadcasts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + ADMIN.encode() + b"\r\nContent-Length: 100\r\n\r\n{")
        stalled.append((reader, writer))
    await asyncio.sleep(0.3)
    status, headers, body = await get(port, "/healthz", "127.0.0.2")
    assert status == 503 and headers["retry-after"] == "1"
    assert json.loads(body) == {"error": "too many requests in progress from your network address (at most 4); "
                                         "retry later"}
    status, _, body = await get(port, "/healthz", "127.0.0.4")  # the node holds 6: full
    assert status == 503 and b"this node has too many requests in progress (at most 6)" in body
    for _, writer in stalled[4:]:
        writer.close()
    await asyncio.sleep(0.3)
    assert (await get(port, "/healthz", "127.0.0.4"))[0] == 200
    assert (await get(port, "/healthz", "127.0.0.3"))[0] == 200
    status, _, text = await get(port, "/metrics", "127.0.0.4")
    metrics = text.decode()
    assert metric(metrics, 'onair_connections_refused_total{kind="http",reason="address_limit"}') == 1
    assert metric(metrics, 'onair_connections_refused_total{kind="http",reason="node_limit"}') == 1
    for _, writer in stalled[:4]:
        writer.close()


async def test_websockets_are_capped_per_node(node) -> None:
    client, _ = node
    sockets = [await client.ws_connect(f"/ws/{BROADCAST}") for _ in range(3)]
    for ws in sockets:
        await ws.send_str(json.dumps({"type": "hello"}))
    with pytest.raises(Exception) as info:
        await client.ws_connect(f"/ws/{BROADCAST}")
    assert "503" in str(info.value)
    resp = await client.get("/metrics")
    metrics = await resp.text()
    assert metric(metrics, 'onair_connections_open{kind="ws"}') == 3
    assert metric(metrics, 'onair_connections_refused_total{kind="ws",reason="node_limit"}') == 1
    await sockets[0].close()
    for _ in range(100):
        resp = await client.get("/metrics")
        if metric(await resp.text(), 'onair_connections_open{kind="ws"}') == 2:
            break
        await asyncio.sleep(0.02)
    again = await client.ws_connect(f"/ws/{BROADCAST}")
    await again.close()
    for ws in sockets[1:]:
        await ws.close()


async def test_metrics_show_the_sizes_of_the_in_memory_tables(node) -> None:
    client, _ = node
    ws = await client.ws_connect(f"/ws/{BROADCAST}")
    await ws.send_str(json.dumps({"type": "hello", "name": "ann"}))
    await ws.receive()
    resp = await client.get("/metrics")
    metrics = await resp.text()
    assert metric(metrics, 'onair_state_entries{table="chat_rooms"}') == 1
    assert metric(metrics, 'onair_state_entries{table="chat_room_viewers"}') == 1
    assert metric(metrics, 'onair_state_entries{table="chat_quota_addresses"}') == 1
    assert metric(metrics, 'onair_state_entries{table="playlist_positions"}') == 1
    assert metric(metrics, 'onair_state_entries{table="live_sessions"}') == 0
    assert metric(metrics, 'onair_state_entries{table="asyncio_tasks"}') > 0
    await ws.close()


def test_the_client_behind_a_trusted_proxy_is_the_nearest_untrusted_forwarded_address() -> None:
    from broadcaster.caps import client_address
    from broadcaster.config import parse_networks

    trusted = parse_networks(["127.0.0.5", "10.0.0.0/8"])
    assert client_address("127.0.0.5", "203.0.113.7", trusted) == "203.0.113.7"
    # a client may put anything on the left: only what trusted proxies appended counts
    assert client_address("127.0.0.5", "198.51.100.1, 203.0.113.7, 10.1.2.3", trusted) == "203.0.113.7"
    assert client_address("127.0.0.2", "203.0.113.7", trusted) == "127.0.0.2"  # not a proxy: forged
    assert client_address("127.0.0.5", None, trusted) == "127.0.0.5"
    assert client_address("127.0.0.5", "203.0.113.7, not-an-address", trusted) == "127.0.0.5"
    assert client_address("127.0.0.5", "203.0.113.7", ()) == "127.0.0.5"


async def _stalled_post(port: int, source: str, forwarded_for: str | None) -> asyncio.StreamWriter:
    _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    forwarded = f"X-Forwarded-For: {forwarded_for}\r\n".encode() if forwarded_for else b""
    writer.write(b"POST /api/broadcasts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + forwarded
                 + b"Authorization: Bearer " + ADMIN.encode() + b"\r\nContent-Length: 100\r\n\r\n{")
    await writer.drain()
    return writer


async def test_requests_through_a_trusted_proxy_count_per_client(aiohttp_client, tmp_path: Path) -> None:
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token=ADMIN,
                        http_max_requests_per_address=2, chat_sockets_per_address=1,
                        trusted_proxies=("127.0.0.5",))
    client = await aiohttp_client(create_app(config))
    await register(client.app, BROADCAST)
    port = client.server.port
    writers = [await _stalled_post(port, "127.0.0.5", "203.0.113.7") for _ in range(2)]
    writers += [await _stalled_post(port, "127.0.0.2", f"203.0.113.{n}") for n in (20, 21)]  # forged: 127.0.0.2
    await asyncio.sleep(0.3)
    caps = client.app[CAPS_KEY]
    assert caps.http.held_by("203.0.113.7") == 2 and caps.http.held_by("127.0.0.2") == 2
    assert caps.http.held_by("127.0.0.5") == 0
    # through the proxy, another client is served; the same client is not
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.5", 0))
    for forwarded, expected in (("203.0.113.8", b" 200 "), ("203.0.113.7", b" 503 ")):
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {forwarded}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert expected in head.split(b"\r\n")[0], head
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        await reader.readexactly(length)
    writer.close()
    # the chat's per-address socket quota (1 here) also sees the client, not the proxy
    session_headers = {"X-Forwarded-For": "203.0.113.30"}
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.5", 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"http://127.0.0.1:{port}/ws/{BROADCAST}"
        first = await session.ws_connect(url, headers=session_headers)
        other = await session.ws_connect(url, headers={"X-Forwarded-For": "203.0.113.31"})
        same = await session.ws_connect(url, headers=session_headers)
        message = await same.receive()
        assert json.loads(message.data)["code"] == "too_many_sockets"
        assert (await same.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert same.close_code == 4029
        await first.send_str(json.dumps({"type": "hello", "name": "ann"}))
        assert json.loads((await first.receive()).data)["type"] == "history"
        for ws in (first, other, same):
            await ws.close()
    for w in writers:
        w.close()


async def test_held_requests_forwarded_by_another_node_count_per_viewer(tmp_path: Path, redis_url: str) -> None:
    """B streams A's broadcast through (broadcaster/hls_forward.py): A, trusting B, counts each viewer."""
    from broadcaster.keys import STORE
    from tests.broadcaster.test_hls_forward import _broadcast, _start

    a = await _start(tmp_path, "node-a", redis_url, hls_max_held_per_address=1, trusted_proxies=("127.0.0.1",))
    b = await _start(tmp_path, "node-b", redis_url)
    try:
        await a.app[STORE].create(_broadcast("node-a"))
        watch = a.app[PLAYLIST_WATCH]
        Packager(a.root, watch).publish(last_msn=11, building_parts=1)
        port = int(b.base.rsplit(":", 1)[1])
        blocking = f"/hls/{BROADCAST}/source/index.m3u8?_HLS_msn=12&_HLS_part=1"
        held = [asyncio.ensure_future(get(port, blocking, source)) for source in ("127.0.0.2", "127.0.0.3")]
        while watch.waiting(BROADCAST, "source") < 2:  # one each: two viewers, not one node
            await asyncio.sleep(0.01)
        status, headers, body = await get(port, blocking, "127.0.0.2")  # that viewer's second: refused by A
        assert status == 503 and headers["retry-after"] == "1"
        assert "from your network address (at most 1)" in json.loads(body)["error"]
        assert a.app[CAPS_KEY].hls_held.held_by("127.0.0.3") == 1
        Packager(a.root, watch).publish(last_msn=11, building_parts=2)
        assert [r[0] for r in await asyncio.gather(*held)] == [200, 200]
    finally:
        await b.runner.cleanup()
        await a.runner.cleanup()
