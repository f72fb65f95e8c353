"""Broadcasts put straight into a node app's registry, for tests that lay out HLS files themselves.

The origin serves to anyone only what the registry knows as a public broadcast; any other id is
gated (``broadcaster/playback/``).
"""

from __future__ import annotations

from aiohttp import web

from broadcaster.keys import STORE
from broadcaster.registry import Broadcast, Visibility, hash_token


async def register(app: web.Application, broadcast_id: str,
                   visibility: Visibility = Visibility.PUBLIC) -> Broadcast:
    broadcast = Broadcast(id=broadcast_id, title=broadcast_id, visibility=visibility,
                          stream_key=f"live_{broadcast_id}_test", host_token_hash=hash_token("host_test"))
    await app[STORE].create(broadcast)
    return broadcast
