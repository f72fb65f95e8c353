"""Video beyond one node: two ``onair serve`` processes on one Redis and the reference nginx edge
(deploy/edge/nginx.conf) in front of both.  A broadcast is published to node A; node B and the edge
answer for it.  The tests run in file order on one cluster and one publisher; the last one kills A."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import redis

from tests.conftest import require_tool
from tests.support.edge import Edge
from tests.support.node import NodeProcess, free_port, redis_db_url, redis_up
from tests.support.publish import ffmpeg_publish
from tests.support.watch import open_watch_page, wait_playing_live

pytestmark = pytest.mark.e2e

REDIS_DB = 11
CLIENTS = 50
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="s(\d+)\.p(\d+)\.m4s"')


@dataclass
class Cluster:
    a: NodeProcess
    b: NodeProcess
    edge: Edge
    broadcast: dict
    publisher: subprocess.Popen

    @property
    def id(self) -> str:
        return self.broadcast["id"]

    def part_file(self, msn: int, part: int) -> Path:
        return self.a.data_dir / "hls" / self.id / "source" / f"s{msn}.p{part}.m4s"

    def origin_requests(self, path: str) -> int:
        """Requests A answered for ``path`` (its access log: path without the query)."""
        return len(re.findall(rf"onair\.access: GET {re.escape(path)} \d{{3}} ", self.a.log()))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    require_tool("nginx")
    require_tool("ffmpeg")
    if not redis_up():
        pytest.skip("no Redis for the cluster")
    url = redis_db_url(REDIS_DB)
    redis.Redis.from_url(url).flushdb()
    root = tmp_path_factory.mktemp("edge-cluster")
    ports = free_port(), free_port()
    edge = Edge(root / "edge", *ports)
    nodes = []
    try:
        for name, port in zip(("a", "b"), ports):
            node = NodeProcess(root / f"node-{name}", http_port=port, redis_url=url, node_id=f"node-{name}",
                               advertise_url=f"http://127.0.0.1:{port}", public_url=edge.base, ladder="source",
                               access_log=True, lease_ttl=2)
            node.start()
            nodes.append(node)
        a, b = nodes
        doc = b.create_broadcast("one broadcast, every node")
        publisher = ffmpeg_publish(a.rtmp_url(doc["stream_key"]), seconds=120, gop=25)
        a.wait_status(doc["id"], "live", timeout=20)
        yield Cluster(a, b, edge, doc, publisher)
        publisher.terminate()
        publisher.wait(timeout=30)
    finally:
        edge.stop()
        for node in reversed(nodes):
            node.stop()
        redis.Redis.from_url(url).flushdb()


async def _hinted(http: aiohttp.ClientSession, base: str, broadcast_id: str,
                  first_of_segment: bool = False) -> tuple[int, int]:
    """The part A's source playlist hints (the next one to be written), read through ``base``.

    ``first_of_segment``: wait for a hint of part 0 (a segment has just completed), which is sure to be
    written; a later part of a segment may never be, if the segment ends before it."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        async with http.get(f"{base}/hls/{broadcast_id}/source/index.m3u8") as resp:
            match = _HINT.search(await resp.text()) if resp.status == 200 else None
        if match and (not first_of_segment or match.group(2) == "0"):
            return int(match.group(1)), int(match.group(2))
        await asyncio.sleep(0.02)
    raise AssertionError("no live LL-HLS playlist with such a preload hint in 20 s")


def test_the_urls_name_the_edge_and_ffprobe_reads_the_hls_url(cluster: Cluster, ffprobe: str) -> None:
    for node in (cluster.a, cluster.b):
        doc = node.broadcast(cluster.id)
        assert doc["hls_url"] == f"{cluster.edge.base}/hls/{cluster.id}/master.m3u8"
        assert doc["watch_url"] == f"{cluster.edge.base}/watch/{cluster.id}"
    asyncio.run(_wait_playlist(cluster))
    out = subprocess.run([ffprobe, "-v", "error", "-show_entries", "stream=codec_type,width,height", "-of", "json",
                          cluster.broadcast["hls_url"]], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    streams = json.loads(out.stdout)["streams"]
    assert {s["codec_type"] for s in streams} >= {"video", "audio"}
    assert any(s.get("width") == 640 for s in streams)


async def _wait_playlist(cluster: Cluster) -> None:
    """Until the source and audio playlists list two complete segments (what a plain HLS client reads)."""
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 30
        for rendition in ("source", "audio"):
            while True:
                async with http.get(f"{cluster.a.base}/hls/{cluster.id}/{rendition}/index.m3u8") as resp:
                    if resp.status == 200 and (await resp.text()).count("#EXTINF") >= 2:
                        break
                assert time.monotonic() < deadline, f"{rendition}: fewer than two segments in 30 s"
                await asyncio.sleep(0.2)


def test_the_watch_page_plays_through_node_b_and_through_the_edge(cluster: Cluster, chromium) -> None:
    for base in (cluster.b.base, cluster.edge.base):
        page, errors = open_watch_page(chromium, f"{base}/watch/{cluster.id}")
        try:
            wait_playing_live(page)
            assert errors == [], errors
        finally:
            page.close()
    # B never ingested it: every /hls answer it gave came from A
    assert f"/hls/{cluster.id}/" in cluster.b.log() and not (cluster.b.data_dir / "hls" / cluster.id).exists()


def test_a_blocking_reload_for_the_next_part_is_answered_when_a_writes_it(cluster: Cluster) -> None:
    delays = asyncio.run(_reload_delays(cluster, rounds=4))
    print("part written on A -> blocking reload answered, ms: "
          + "; ".join(f"{via} {', '.join(f'{d * 1000:.0f}' for d in ds)}" for via, ds in delays.items()))
    for via, ds in delays.items():
        assert len(ds) == 4, (via, ds)
        # held until the part exists, then answered on A's publish (not at a timeout: 3 s; nor at a poll)
        assert all(0 <= d < 1.0 for d in ds), (via, ds)


async def _reload_delays(cluster: Cluster, rounds: int) -> dict[str, list[float]]:
    delays: dict[str, list[float]] = {"B": [], "edge": []}
    async with aiohttp.ClientSession() as http:
        for _ in range(rounds):
            for via, base in (("B", cluster.b.base), ("edge", cluster.edge.base)):
                msn, part = await _hinted(http, cluster.a.base, cluster.id, first_of_segment=True)
                url = f"{base}/hls/{cluster.id}/source/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"
                async with http.get(url) as resp:
                    body = await resp.text()
                    answered = time.time()
                assert resp.status == 200, body
                assert f"s{msn}.p{part}.m4s" in body
                delays[via].append(answered - cluster.part_file(msn, part).stat().st_mtime)
    return delays


def test_fifty_clients_asking_the_edge_for_the_next_part_make_one_origin_request(cluster: Cluster) -> None:
    path, reloads_before, reloads_after = asyncio.run(_fifty(cluster))
    assert cluster.origin_requests(path) == 1, cluster.origin_requests(path)
    # the 50 blocking reloads of that part were one request to A too
    assert reloads_after - reloads_before == 1, (reloads_before, reloads_after)
    served = cluster.edge.served()
    assert served[(path, "MISS")] == 1 and served[(path, "HIT")] == CLIENTS - 1, served


async def _fifty(cluster: Cluster) -> tuple[str, int, int]:
    playlist = f"/hls/{cluster.id}/source/index.m3u8"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        msn, part = await _hinted(http, cluster.a.base, cluster.id, first_of_segment=True)
        await asyncio.sleep(0.1)  # A logs the requests that found the hint once answered
        before = cluster.origin_requests(playlist)
        path = f"/hls/{cluster.id}/source/s{msn}.p{part}.m4s"

        async def get(url: str) -> bytes:
            async with http.get(url) as resp:
                assert resp.status == 200, (url, resp.status)
                return await resp.read()

        reload = f"{cluster.edge.base}{playlist}?_HLS_msn={msn}&_HLS_part={part}"
        got = await asyncio.gather(*(get(cluster.edge.base + path) for _ in range(CLIENTS)),
                                   *(get(reload) for _ in range(CLIENTS)))
        assert len(set(got[:CLIENTS])) == 1 and got[0] == cluster.part_file(msn, part).read_bytes()
        await asyncio.sleep(0.3)
        return path, before, cluster.origin_requests(playlist)


def test_node_a_killed_node_b_answers_for_its_broadcast_with_a_404_within_2_s(cluster: Cluster) -> None:
    cluster.a.kill()
    started = time.monotonic()
    for base in (cluster.b.base, cluster.edge.base):
        for path in ("master.m3u8", "source/index.m3u8", "source/index.m3u8?_HLS_msn=99999&_HLS_part=0"):
            status, body = asyncio.run(_get(f"{base}/hls/{cluster.id}/{path}"))
            assert status == 404, (base, path, status, body)
            assert "not served by any live node" in body
    elapsed = time.monotonic() - started
    print(f"six requests to B and the edge after A was killed: 404 in {elapsed:.2f} s")
    assert elapsed < 2


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        async with http.get(url) as resp:
            return resp.status, await resp.text()
