"""A real nginx ``proxy_cache`` (deploy/edge/nginx.conf) in front of a node with a live restricted
broadcast: 20 granted LL-HLS viewers share the cached parts and segments (the node serves each at most
twice, counted in its access log), while ungranted requests through the same cache are refused."""

from __future__ import annotations

import asyncio
import collections
import re
import time
import urllib.parse

import aiohttp
import pytest

from tests.conftest import require_tool
from tests.support.edge import Edge
from tests.support.playback import get, tamper, viewer_token, wait_live_playlist, with_credentials
from tests.support.publish import ffmpeg_publish

pytestmark = pytest.mark.e2e

VIEWERS = 20
WATCH_SECONDS = 12.0
_URI = re.compile(r'URI="([^"]+)"')
_SERVED = re.compile(r"onair\.access: GET (/hls/\S+) 200 ")


async def viewer(http: aiohttp.ClientSession, master_url: str, until: float, fetched: collections.Counter) -> int:
    """An LL-HLS player through the edge, from the live edge on: blocking playlist reloads, then every
    new part, the hinted part and every new segment (a non-LL player's share) of the source and audio
    renditions.
    Returns how many objects it got; any answer but 200 fails."""
    status, _, body = await get(http, master_url)
    assert status == 200, status
    master = body.decode()
    playlists = [urllib.parse.urljoin(master_url, uri) for uri in _URI.findall(master)]
    playlists += [urllib.parse.urljoin(master_url, line) for line in master.splitlines()
                  if line and not line.startswith("#")]
    got = 0

    async def fetch(playlist_url: str, uri: str, hinted: bool) -> None:
        nonlocal got
        url = urllib.parse.urljoin(playlist_url, uri)
        status, _, body = await get(http, url)
        if status == 404 and hinted:
            return  # a hinted part the segment ended without: RFC 8216bis lets the server 404 it
        assert status == 200 and body, (uri, status)
        fetched[urllib.parse.urlsplit(url).path] += 1
        got += 1

    async def follow(playlist_url: str) -> None:
        text = await wait_live_playlist(http, playlist_url)
        # Like a player joining at the live edge: the init section and the last two parts, not the past.
        listed = _objects(text)
        parts = [uri for uri in listed if ".p" in uri.split("?")[0]]
        seen = set(listed) - set(parts[-2:]) - {uri for uri in listed if "init" in uri}
        while time.monotonic() < until:
            new = [uri for uri in _objects(text) if uri not in seen]
            seen.update(new)
            # what a reload lists is fetched at once (a player's part and segment loads overlap)
            msn, part = _hinted(text)
            hint = f"s{msn}.p{part}.m4s"
            await asyncio.gather(*(fetch(playlist_url, uri, uri.startswith(hint + "?")) for uri in new))
            status, _, body = await get(http, f"{playlist_url}&_HLS_msn={msn}&_HLS_part={part}")
            assert status == 200, status
            text = body.decode()

    await asyncio.gather(*(follow(url) for url in playlists))
    return got


def _objects(text: str) -> list[str]:
    """Object URIs a live LL media playlist lists: init section, parts, preload hint, segments."""
    lines = text.splitlines()
    found = [_URI.search(line).group(1) for line in lines
             if line.startswith(("#EXT-X-MAP:", "#EXT-X-PART:", "#EXT-X-PRELOAD-HINT:"))]
    return found + [line for line in lines if line and not line.startswith("#")]


def _hinted(text: str) -> tuple[str, str]:
    hint = _URI.search(next(line for line in text.splitlines() if line.startswith("#EXT-X-PRELOAD-HINT:"))).group(1)
    return re.match(r"s(\d+)\.p(\d+)\.m4s", hint).groups()


def test_twenty_granted_viewers_share_an_edge_cache_that_refuses_ungranted_requests(node_factory, tmp_path):
    require_tool("nginx")
    node = node_factory(ladder="source", access_log=True)
    doc = node.create_broadcast("private keynote", visibility="restricted")
    publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=60, gop=25)
    node.wait_status(doc["id"], "live", timeout=15)
    tokens = [viewer_token(node, doc["id"], f"viewer {n}") for n in range(VIEWERS)]
    expired = viewer_token(node, doc["id"], "late", ttl=0.5)
    edge = Edge(tmp_path / "edge", node.http_port)
    try:
        asyncio.run(_scenario(node, edge, doc, tokens, expired))
    finally:
        edge.stop()
        publisher.terminate()
        publisher.wait(timeout=30)
    # The node served each object at most twice (a signature changes at a bucket boundary: an object
    # asked for on both sides of one is fetched under both URLs), counted by the node itself.
    served = collections.Counter(_SERVED.findall(node.log()))
    objects = {path: n for path, n in served.items() if not path.endswith(".m3u8")}
    assert objects, "the node served no object"
    print(f"node served {sum(objects.values())} object responses for {len(objects)} objects "
          f"(at most {max(objects.values())} each); {sum(served.values()) - sum(objects.values())} playlists")
    assert max(objects.values()) <= 2, sorted(objects.items(), key=lambda kv: -kv[1])[:5]
    # (and the grants and signatures never reach its log)
    assert tokens[0]["grant"] not in node.log() and "?s=" not in node.log()


async def _scenario(node, edge: Edge, doc: dict, tokens: list[dict], expired: dict) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        for _ in range(100):
            try:
                if (await get(http, edge.base + "/healthz"))[0] == 200:
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        masters = [t["hls_url"].replace(node.base, edge.base) for t in tokens]
        await wait_live_playlist(http, masters[0].replace("master.m3u8", "source/index.m3u8"))
        fetched: collections.Counter[str] = collections.Counter()
        until = time.monotonic() + WATCH_SECONDS
        got = await asyncio.gather(*(viewer(http, url, until, fetched) for url in masters))
        print(f"{VIEWERS} viewers got {sum(got)} objects through the edge ({len(fetched)} distinct)")
        assert min(got) > 10, got
        # Every viewer fetched the objects: far more object requests reached the edge than the node.
        assert sum(fetched.values()) >= VIEWERS * len(fetched) * 0.5
        # Now every object is in the cache; ungranted requests for them through the same cache:
        source = await wait_live_playlist(http, masters[0].replace("master.m3u8", "source/index.m3u8"))
        part = next(_URI.search(line).group(1) for line in source.splitlines() if line.startswith("#EXT-X-PART:"))
        cached = urllib.parse.urljoin(masters[0].replace("master.m3u8", "source/index.m3u8"), part)
        status, headers, _ = await get(http, cached)
        assert status == 200 and headers.get("Cache-Control", "").startswith("public")
        signature = urllib.parse.parse_qs(urllib.parse.urlsplit(cached).query)["s"][0]
        await asyncio.sleep(max(0.0, expired["expires"] + 1 - time.time()))
        attempts = {
            "no signature": (with_credentials(cached), 401),
            "tampered signature": (with_credentials(cached, s=tamper(signature)), 403),
            "expired grant": (with_credentials(cached, grant=expired["grant"]), 403),
            "tampered grant": (with_credentials(cached, grant=tamper(tokens[0]["grant"])), 403),
            "master without grant": (with_credentials(masters[0]), 401),
            "playlist with an expired grant": (with_credentials(masters[0], grant=expired["grant"]), 403),
        }
        for label, (url, expected) in attempts.items():
            for _ in range(2):  # twice: a refusal is not cached either
                status, headers, body = await get(http, url)
                assert status == expected, (label, status, body[:100])
                assert headers["Access-Control-Allow-Origin"] == "*" and body.startswith(b'{"error"'), label
