"""Restricted broadcasts from a client's side: viewer tokens and grants, URLs with or without them."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import aiohttp

from tests.support.node import NodeProcess

CREDENTIALS = ("grant", "s")


def viewer_token(node: NodeProcess, broadcast_id: str, name: str = "viewer", **body: Any) -> dict[str, Any]:
    """``POST /api/broadcasts/{id}/viewer-tokens`` as the admin: token, viewer_id, grant, hls_url, watch_url."""
    status, doc = node.request("POST", f"/api/broadcasts/{broadcast_id}/viewer-tokens", {"name": name, **body})
    assert status == 201, doc
    return doc


def with_credentials(url: str, **params: str | None) -> str:
    """``url`` without its grant and signature, then with ``params`` (None: left out)."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in CREDENTIALS]
    query += [(k, v) for k, v in params.items() if v is not None]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def tamper(text: str) -> str:
    """One character of the middle changed."""
    at = len(text) // 2
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


async def get(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    async with http.get(url, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


async def wait_live_playlist(http: aiohttp.ClientSession, url: str, timeout: float = 20) -> str:
    """The LL media playlist at ``url`` once it lists parts and a preload hint."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, _, body = await get(http, url)
        text = body.decode(errors="replace")
        if status == 200 and "#EXT-X-PART:" in text and "#EXT-X-PRELOAD-HINT" in text and "#EXTINF" in text:
            return text
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{url} never listed parts: {status} {text[:300]}")
        await asyncio.sleep(0.2)
