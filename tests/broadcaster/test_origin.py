"""The HLS origin: content types, caching, CORS, 404s and no path traversal."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.app import create_app
from broadcaster.config import NodeConfig
from broadcaster.origin import resolve
from tests.support.registry import register


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path):
    hls = tmp_path / "hls" / "abc123"
    (hls / "source").mkdir(parents=True)
    (hls / "master.m3u8").write_text("#EXTM3U\n")
    (hls / "source" / "index.m3u8").write_text("#EXTM3U\n#EXT-X-TARGETDURATION:2\n")
    (hls / "source" / "0.ts").write_bytes(b"G" * 188)
    (tmp_path / "onair.db.secret").write_text("top secret")
    (tmp_path / "hls" / "vod1").mkdir()
    (tmp_path / "hls" / "vod1" / "index.m3u8").write_text("#EXTM3U\n#EXT-X-ENDLIST\n")
    config = NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token="t" * 20)
    client = await aiohttp_client(create_app(config))
    for broadcast_id in ("abc123", "vod1"):
        await register(client.app, broadcast_id)
    return client


async def test_playlists_and_segments_have_types_cache_and_cors(client):
    resp = await client.get("/hls/abc123/master.m3u8")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert resp.headers["Cache-Control"] == "public, max-age=1"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await client.get("/hls/abc123/source/0.ts")
    assert resp.headers["Content-Type"] == "video/mp2t"
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert await resp.read() == b"G" * 188
    # cheap validators: a cache revalidates and gets a 304
    etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
    assert (await client.get("/hls/abc123/source/0.ts", headers={"If-None-Match": etag})).status == 304
    assert (await client.get("/hls/abc123/source/0.ts", headers={"If-Modified-Since": modified})).status == 304
    resp = await client.get("/hls/vod1/index.m3u8")
    assert resp.headers["Cache-Control"] == "public, max-age=3600"


async def test_a_missing_object_is_a_404_no_cache_keeps_longer_than_a_part(client):
    resp = await client.get("/hls/abc123/source/s9.p0.m4s")
    assert resp.status == 404
    # the default part target is 0.5 s: whole seconds cannot say less, so not kept at all
    assert resp.headers["Cache-Control"] == "no-cache"


async def test_preflight(client):
    resp = await client.options("/hls/abc123/master.m3u8", headers={"Origin": "https://example.test",
                                                                   "Access-Control-Request-Method": "GET"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path", [
    "/hls/abc123/nothing.m3u8",
    "/hls/abc123/../../onair.db.secret",
    "/hls/abc123/%2e%2e/%2e%2e/onair.db.secret",
    "/hls/abc123/source/..%2f..%2f..%2fonair.db.secret",
    "/hls/..%2f/onair.db.secret",
    "/hls/abc123/source",
    "/hls/abc123/source/0.exe",
])
async def test_unknown_and_traversal_are_404(client, path):
    resp = await client.get(path)
    assert resp.status == 404
    assert "secret" not in await resp.text()


async def test_an_unknown_id_is_refused_as_a_restricted_broadcast_would_be(client):
    # (tests/e2e/test_restricted_disclosure.py checks the two answers are the same)
    resp = await client.get("/hls/unknown/master.m3u8")
    assert resp.status == 401
    assert (await resp.json()) == {"error": "a playback grant is required"}
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_resolve_refuses_escapes(tmp_path: Path):
    (tmp_path / "b1").mkdir()
    assert resolve(tmp_path, "b1", "x/y.ts") == (tmp_path / "b1" / "x" / "y.ts").resolve()
    for rel in ("../x.ts", "a/../../x.ts", "", "a//b.ts", "/etc/passwd", "a\\..\\b"):
        assert resolve(tmp_path, "b1", rel) is None
    assert resolve(tmp_path, "..", "x.ts") is None


def test_cache_lifetimes_follow_the_part_and_target_durations():
    from broadcaster import hls_cache

    # a 404 for an object that may be written soon: at most a part target, in whole seconds
    assert hls_cache.not_found(0.5) == "no-cache"
    assert hls_cache.not_found(1.5) == "public, max-age=1"
    # a blocking reload's answer: as long as the origin would hold such a request (three target durations)
    assert hls_cache.blocking_reload(2.0) == "public, max-age=6"
    assert hls_cache.blocking_reload(0.2) == "public, max-age=1"
