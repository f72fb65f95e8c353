"""A restricted broadcast's HLS, live from a real RTMP publisher (ffmpeg, GStreamer) and as a replay: every class
of URL is refused without a valid grant (none, expired, another broadcast's, tampered), with a JSON
error and the CORS headers kept; with the grant a plain HLS client (ffprobe) reads ``hls_url``."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import urllib.parse

import aiohttp
import pytest

from tests.support.playback import get, tamper, viewer_token, wait_live_playlist, with_credentials
from tests.conftest import require_tool
from tests.support.publish import ffmpeg_publish, gstreamer_publish

pytestmark = pytest.mark.e2e

_URI = re.compile(r'URI="([^"]+)"')


def object_urls(playlist_url: str, text: str) -> dict[str, str]:
    """Absolute URLs of one object of each class a live LL media playlist names."""
    lines = text.splitlines()
    parts = [_URI.search(line).group(1) for line in lines if line.startswith("#EXT-X-PART:")]
    segments = [line for line in lines if line and not line.startswith("#")]
    found = {
        "init": _URI.search(next(line for line in lines if line.startswith("#EXT-X-MAP:"))).group(1),
        "part": parts[-1],
        "segment": segments[-1],
        "preload-hinted part": _URI.search(next(line for line in lines if line.startswith("#EXT-X-PRELOAD-HINT:"))).group(1),
    }
    return {name: urllib.parse.urljoin(playlist_url, uri) for name, uri in found.items()}


def next_part(text: str) -> tuple[int, int]:
    """(msn, part) of the preload-hinted part: what a blocking reload asks for next."""
    hint = _URI.search(next(line for line in text.splitlines() if line.startswith("#EXT-X-PRELOAD-HINT:"))).group(1)
    msn, part = re.match(r"s(\d+)\.p(\d+)\.m4s", hint.split("?")[0]).groups()
    return int(msn), int(part)


async def assert_refused(http: aiohttp.ClientSession, name: str, url: str, grants: dict[str, str]) -> None:
    """``url`` without credentials, and with each bad grant, is refused: 401/403, JSON error, CORS."""
    attempts = {"no grant": with_credentials(url)}
    attempts.update({f"{label} grant": with_credentials(url, grant=grant) for label, grant in grants.items()})
    if "s=" in url:
        signature = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["s"][0]
        attempts["tampered signature"] = with_credentials(url, s=tamper(signature))
    for label, attempt in attempts.items():
        status, headers, body = await asyncio.wait_for(get(http, attempt), 15)
        expected = 401 if label == "no grant" else 403
        assert status == expected, (name, label, status, body[:200])
        assert headers["Content-Type"].startswith("application/json"), (name, label)
        assert json.loads(body)["error"], (name, label)
        assert headers["Access-Control-Allow-Origin"] == "*", (name, label)
        assert "max-age" not in headers.get("Cache-Control", ""), (name, label)


@pytest.mark.parametrize("publisher_kind", ["ffmpeg", "rtmp2sink"])
def test_every_class_of_hls_url_is_refused_without_a_valid_grant_live_and_as_a_replay(node_factory, ffprobe,
                                                                                    publisher_kind):
    node = node_factory(ladder="source,240p", segment_target=1)
    doc = node.create_broadcast("private all-hands", visibility="restricted")
    other = node.create_broadcast("another private one", visibility="restricted")
    assert re.fullmatch(r"[0-9a-f]{32}", doc["id"]), "a restricted broadcast's id has 128 random bits"
    expired = viewer_token(node, doc["id"], "late", ttl=1)
    if publisher_kind == "ffmpeg":
        publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=40, gop=25)
    else:
        require_tool("gst-launch-1.0")
        publisher = gstreamer_publish(node.rtmp_url(doc["stream_key"]), seconds=40, element=publisher_kind)
    node.wait_status(doc["id"], "live", timeout=15)
    good = viewer_token(node, doc["id"], "Ann")
    foreign = viewer_token(node, other["id"], "Ann")
    assert good["hls_url"] == f"{node.base}/hls/{doc['id']}/master.m3u8?grant={good['grant']}"
    assert good["watch_url"] == f"{node.base}/watch/{doc['id']}#token={good['token']}&grant={good['grant']}"
    time.sleep(max(0.0, expired["expires"] + 1.5 - time.time()))
    bad = {"expired": expired["grant"], "another broadcast's": foreign["grant"], "tampered": tamper(good["grant"])}

    async def live() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            status, headers, body = await get(http, good["hls_url"])
            assert status == 200 and headers["Cache-Control"] == "private, no-store"
            master = body.decode()
            uris = [line for line in master.splitlines() if line and not line.startswith("#")]
            uris += _URI.findall(master)
            assert sorted(uris) == sorted(f"{r}/index.m3u8?grant={good['grant']}" for r in ("source", "240p", "audio"))
            source_url = urllib.parse.urljoin(good["hls_url"], f"source/index.m3u8?grant={good['grant']}")
            audio_url = urllib.parse.urljoin(good["hls_url"], f"audio/index.m3u8?grant={good['grant']}")
            source = await wait_live_playlist(http, source_url)
            audio = await wait_live_playlist(http, audio_url)
            assert "?s=" in source and good["grant"] not in source, "objects carry the broadcast's signature"
            msn, part = next_part(source)
            urls = {"master": good["hls_url"], "media playlist": source_url,
                    "blocking reload": f"{source_url}&_HLS_msn={msn}&_HLS_part={part}",
                    "audio rendition playlist": audio_url,
                    **object_urls(source_url, source),
                    **{f"audio {k}": v for k, v in object_urls(audio_url, audio).items() if k in ("init", "part")}}
            # With the grant (playlists) and the signatures the playlists carry (objects): all served.
            for name, url in urls.items():
                status, headers, body = await asyncio.wait_for(get(http, url), 15)
                assert status == 200 and body, (name, status, body[:200])
                assert headers["Access-Control-Allow-Origin"] == "*"
            # An object also opens with the viewer's grant (a player that keeps query strings).
            status, _, _ = await get(http, with_credentials(urls["segment"], grant=good["grant"]))
            assert status == 200
            # Another object's signature does not open this one.
            signature = urllib.parse.parse_qs(urllib.parse.urlsplit(urls["part"]).query)["s"][0]
            status, _, _ = await get(http, with_credentials(urls["segment"], s=signature))
            assert status == 403
            for name, url in urls.items():
                await assert_refused(http, name, url, bad)

    asyncio.run(live())
    # A plain HLS client opens hls_url as it is.
    probe = subprocess.run([ffprobe, "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json",
                            good["hls_url"]], capture_output=True, timeout=60)
    assert probe.returncode == 0, probe.stderr.decode()
    kinds = {(s["codec_type"], s["codec_name"]) for s in json.loads(probe.stdout)["streams"]}
    assert ("video", "h264") in kinds and ("audio", "aac") in kinds
    # Without the grant it is refused, and says so.
    refused = subprocess.run([ffprobe, "-v", "error", with_credentials(good["hls_url"])], capture_output=True,
                             timeout=60)
    assert refused.returncode != 0 and b"401" in refused.stderr

    assert node.request("POST", f"/api/broadcasts/{doc['id']}/end")[0] == 200
    publisher.terminate()
    publisher.wait(timeout=30)

    async def replay() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            media_url = urllib.parse.urljoin(good["hls_url"], f"240p/index.m3u8?grant={good['grant']}")
            status, headers, body = await get(http, media_url)
            text = body.decode()
            assert status == 200 and "#EXT-X-ENDLIST" in text and headers["Cache-Control"] == "private, no-store"
            segments = [line for line in text.splitlines() if line and not line.startswith("#")]
            init = _URI.search(text).group(1)
            urls = {"replay master": good["hls_url"], "replay media playlist": media_url,
                    "replay segment": urllib.parse.urljoin(media_url, segments[0]),
                    "replay init": urllib.parse.urljoin(media_url, init)}
            for name, url in urls.items():
                status, headers, body = await get(http, url)
                assert status == 200 and body, (name, status)
                if name in ("replay segment", "replay init"):
                    # shareable by a cache until the signature expires (hours, for a replay), no longer
                    max_age = int(re.search(r"max-age=(\d+)", headers["Cache-Control"]).group(1))
                    assert headers["Cache-Control"].startswith("public") and 6 * 3600 - 5 <= max_age <= 12 * 3600
            for name, url in urls.items():
                await assert_refused(http, name, url, bad)

    asyncio.run(replay())
