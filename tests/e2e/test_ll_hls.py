"""LL-HLS on a real node: ffmpeg publishes over RTMP, HTTP clients block on the playlist."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess

import aiohttp
import m3u8
import pytest

from tests.support.publish import ffmpeg_publish

pytestmark = pytest.mark.e2e


def edge(text: str) -> tuple[int, int]:
    """(msn, index) of the newest part listed in a live LL playlist."""
    playlist = m3u8.loads(text)
    last_part = playlist.segments[-1].parts[-1] if playlist.segments and playlist.segments[-1].parts else None
    assert last_part is not None, "no part listed"
    match = re.fullmatch(r"s(\d+)\.p(\d+)\.m4s", last_part.uri)
    assert match, last_part.uri
    return int(match.group(1)), int(match.group(2))


async def fetch_text(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


async def wait_live_playlist(http: aiohttp.ClientSession, url: str) -> str:
    for _ in range(200):
        status, text = await fetch_text(http, url)
        if status == 200 and "#EXT-X-PART:" in text and "#EXT-X-PRELOAD-HINT" in text:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never listed parts")


def test_blocking_reload_holds_until_the_part_exists_and_does_not_block_others(node_factory):
    node = node_factory(ladder="source,240p", segment_target=2)
    doc = node.create_broadcast("ll")
    publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=14, gop=25)
    node.wait_status(doc["id"], "live", timeout=15)
    base = f"{node.base}/hls/{doc['id']}"

    async def scenario() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await wait_live_playlist(http, f"{base}/240p/index.m3u8")
            text = await wait_live_playlist(http, f"{base}/source/index.m3u8")
            msn, part = edge(text)
            hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text).group(1)
            # ask for two parts beyond the newest: it does not exist yet, so the request is held
            wanted = (msn, part + 2)
            held = asyncio.create_task(fetch_text(http, f"{base}/source/index.m3u8?_HLS_msn={wanted[0]}&_HLS_part={wanted[1]}"))
            hinted = asyncio.create_task(http.get(f"{base}/source/{hint}"))
            await asyncio.sleep(0.05)
            assert not held.done()  # (the hinted part may be written by now: parts come every 0.5 s)
            # meanwhile every other request is answered
            for path in ("master.m3u8", "240p/index.m3u8", "source/index.m3u8", "audio/index.m3u8"):
                status, _ = await fetch_text(http, f"{base}/{path}")
                assert status == 200, path
            assert not held.done(), "the held request was answered before its part existed"
            status, body = await held
            assert status == 200
            got = edge(body)
            # the answer lists the part asked for (or, if that segment ended sooner, the next one's first)
            assert got >= wanted or (got[0] == wanted[0] + 1 and got[1] >= 0), (got, wanted)
            assert '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES' in body
            response = await hinted
            assert response.status == 200 and response.headers["Content-Type"] == "video/iso.segment"
            assert len(await response.read()) > 0
            response.release()
            # a request too far ahead is refused at once, per RFC 8216bis
            status, body = await fetch_text(http, f"{base}/source/index.m3u8?_HLS_msn={got[0] + 10}")
            assert status == 400 and "_HLS_msn" in body
            status, _ = await fetch_text(http, f"{base}/source/index.m3u8?_HLS_part=1")
            assert status == 400
            # the rendition reports name the sibling playlist at (about) the same edge
            status, text = await fetch_text(http, f"{base}/240p/index.m3u8")
            report = m3u8.loads(text).rendition_reports
            assert [r.uri for r in report] == ["../source/index.m3u8"]
            assert abs(report[0].last_msn - edge(text)[0]) <= 1

    asyncio.run(scenario())
    assert publisher.wait(timeout=30) == 0


def test_a_plain_hls_client_plays_the_ll_playlists(node_factory, ffprobe):
    """ffmpeg's HLS reader knows nothing of LL-HLS: it reads the same master and media playlists as plain fMP4 HLS."""
    node = node_factory(ladder="source,240p", segment_target=1)
    doc = node.create_broadcast("plain client")
    publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=12, gop=25)
    node.wait_status(doc["id"], "live", timeout=15)
    master = f"{node.base}/hls/{doc['id']}/master.m3u8"

    async def wait_parts() -> None:
        async with aiohttp.ClientSession() as http:
            await wait_live_playlist(http, f"{node.base}/hls/{doc['id']}/240p/index.m3u8")
            await wait_live_playlist(http, f"{node.base}/hls/{doc['id']}/audio/index.m3u8")

    asyncio.run(wait_parts())
    probe = subprocess.run([ffprobe, "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json",
                            master], capture_output=True, timeout=60)
    assert probe.returncode == 0, probe.stderr.decode()
    kinds = {(s["codec_type"], s["codec_name"]) for s in json.loads(probe.stdout)["streams"]}
    assert ("video", "h264") in kinds and ("audio", "aac") in kinds
    ffmpeg = ffprobe.replace("ffprobe", "ffmpeg")
    played = subprocess.run([ffmpeg, "-v", "error", "-i", master, "-map", "0:v:0", "-map", "0:a:0", "-t", "2",
                             "-f", "null", "-"], capture_output=True, timeout=60)
    assert played.returncode == 0, played.stderr.decode()
    assert publisher.wait(timeout=30) == 0
