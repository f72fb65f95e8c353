"""Nothing discloses a restricted broadcast to a request without its grant: the public API, the watch
page and the HLS paths answer exactly as for an id that does not exist (status, body, headers), and
``/metrics`` names no broadcast unless scraped with the admin token or on ``--metrics-listen``."""

from __future__ import annotations

import asyncio
import secrets
import urllib.request

import aiohttp
import pytest

from tests.support.node import ADMIN_TOKEN, free_port
from tests.support.playback import get, tamper, viewer_token, wait_live_playlist
from tests.support.publish import ffmpeg_publish

pytestmark = pytest.mark.e2e

#: headers that differ between any two answers
_VARYING = {"Date"}

PATHS = [
    "/api/public/broadcasts/{id}",
    "/watch/{id}",
    "/hls/{id}/master.m3u8",
    "/hls/{id}/source/index.m3u8",
    "/hls/{id}/source/index.m3u8?_HLS_msn=3&_HLS_part=0",
    "/hls/{id}/audio/index.m3u8",
    "/hls/{id}/source/s1.m4s",
    "/hls/{id}/source/s1.p0.m4s",
    "/hls/{id}/source/init0.mp4",
    "/hls/{id}/source/s1.m4s?s=1999999999.AAAAAAAAAAAAAAAAAAAAAA",
    "/hls/{id}/master.m3u8?grant=pg1.e30.AAAA",
]


def scrape(url: str, token: str | None = None) -> str:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def test_a_restricted_broadcast_looks_like_an_unknown_id_and_metrics_name_no_broadcast(node_factory):
    metrics_port = free_port()
    node = node_factory(ladder="source", metrics_listen=str(metrics_port))
    restricted = node.create_broadcast("board meeting", visibility="restricted")
    public = node.create_broadcast("town hall")
    unknown = secrets.token_hex(16)  # same length as a restricted id: same Content-Length
    assert len(restricted["id"]) == len(unknown) == 32
    publishers = [ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=20, gop=25) for doc in (restricted, public)]
    node.wait_status(restricted["id"], "live", timeout=15)
    node.wait_status(public["id"], "live", timeout=15)
    granted = viewer_token(node, restricted["id"])

    async def compare() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            # Both are live and have written playlists and segments by now.
            await wait_live_playlist(http, f"{node.base}/hls/{public['id']}/source/index.m3u8")
            await wait_live_playlist(http, granted["hls_url"].replace("master.m3u8", "source/index.m3u8"))
            for path in PATHS:
                for extra in ({}, {"Authorization": "Bearer " + tamper(granted["grant"])}):
                    answers = []
                    for broadcast_id in (restricted["id"], unknown):
                        status, headers, body = await get(http, node.base + path.format(id=broadcast_id),
                                                          headers=extra)
                        headers = {k: v for k, v in headers.items() if k not in _VARYING}
                        answers.append((status, headers, body.replace(broadcast_id.encode(), b"<id>")))
                    assert answers[0] == answers[1], (path, extra, answers)
                    assert answers[0][0] in ((200,) if path.startswith("/watch") else (401, 403, 404)), path
            # The public API answers for the restricted broadcast to its grant only.
            status, _, body = await get(http, f"{node.base}/api/public/broadcasts/{restricted['id']}",
                                        headers={"Authorization": "Bearer " + granted["grant"]})
            assert status == 200 and b"board meeting" in body
            # A public broadcast is as it was: no token anywhere.
            status, _, body = await get(http, f"{node.base}/api/public/broadcasts/{public['id']}")
            assert status == 200 and b"town hall" in body
            status, _, body = await get(http, f"{node.base}/hls/{public['id']}/master.m3u8")
            assert status == 200 and b"grant" not in body
            status, _, body = await get(http, f"{node.base}/hls/{public['id']}/source/index.m3u8")
            assert status == 200 and b"?s=" not in body and b"#EXT-X-PART:" in body

    asyncio.run(compare())
    # /metrics: per-broadcast series exist (the admin sees them) but no id without the admin token.
    for token in (None, "wrong-token", granted["token"], granted["grant"]):
        text = scrape(f"{node.base}/metrics", token)
        assert "onair_live_broadcasts 2.0" in text
        assert restricted["id"] not in text and public["id"] not in text, token
        assert 'broadcast="' not in text
    as_admin = scrape(f"{node.base}/metrics", ADMIN_TOKEN)
    assert f'broadcast="{restricted["id"]}"' in as_admin and f'broadcast="{public["id"]}"' in as_admin
    # The metrics-only listener (loopback by default) has every series without a token.
    separate = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    assert f'broadcast="{restricted["id"]}"' in separate
    for publisher in publishers:
        publisher.terminate()
        publisher.wait(timeout=30)
