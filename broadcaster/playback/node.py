"""``setup_playback(app)``: the playback gate's life on a node.

The gate needs the registry (is a broadcast public?), the moderation store (the viewer-token
epoch), the chat bus (bans, and access notices from every node) and the cluster secret (the
relay's): its ``cleanup_ctx`` runs after theirs, and owns the task that follows the notices.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from broadcaster.chat import CHAT_BUS, CHAT_RELAY
from broadcaster.keys import STORE
from broadcaster.moderation_api import MOD_STORE
from broadcaster.playback.access import PlaybackAccess, Revocations
from broadcaster.playback.gate import PLAYBACK, PlaybackGate


def setup_playback(app: web.Application, *, ttl: float = 5.0) -> None:
    """Add the gate to a node app built by ``create_app`` (after ``setup_moderation`` and ``setup_chat``)."""

    async def revocations(broadcast_id: str) -> Revocations:
        epoch = await app[MOD_STORE].token_epoch(broadcast_id)
        bans = await app[CHAT_BUS].bans(broadcast_id)
        # Timeouts are the chat's; a ban (no end) also ends playback.
        return Revocations(epoch, frozenset(b.viewer_id for b in bans if b.until is None))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        access = PlaybackAccess(app[STORE].get, revocations, ttl=ttl)
        app[PLAYBACK] = PlaybackGate(access, lambda: app[CHAT_RELAY].secret,
                                     lambda broadcast_id: app[MOD_STORE].token_epoch(broadcast_id))
        follower = asyncio.create_task(access.follow(app[CHAT_BUS]), name="playback-access-notices")
        yield
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await access.close()

    app.cleanup_ctx.append(lifecycle)
