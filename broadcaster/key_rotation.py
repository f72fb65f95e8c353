"""Rotating a stream key ends the publish that used the old one, on whichever node it is.

``POST /api/broadcasts/{id}/rotate-key`` stores the new key, checks this
node's publisher of the broadcast at once and announces the rotation on the
bus channel ``ingest:keys``; every node (one node: this one, through the
memory bus; many: all of them, through Redis) checks its own publisher of the
broadcast against the registry and disconnects it when the key it was
accepted with is no longer the broadcast's (``LiveManager.revoke_stale``).
The publisher's RTMP connection or WHIP session closes; the broadcast waits
its reconnect grace for a publisher with the new key.  An announcement lost
while Redis is away is made up for by ``LiveManager``'s once-a-second check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from broadcaster.bus import GAP, BusUnavailable
from broadcaster.keys import CHAT_BUS, LIVE

log = logging.getLogger("onair.keys")

CHANNEL = "ingest:keys"


async def announce_rotation(app: web.Application, broadcast_id: str) -> None:
    """Called once the new key is stored."""
    await app[LIVE].revoke_stale(broadcast_id)
    if CHAT_BUS in app:
        try:
            await app[CHAT_BUS].publish(CHANNEL, broadcast_id.encode())
        except BusUnavailable as exc:
            # the other nodes' once-a-second check still finds the old key
            log.warning("key rotation of %s not announced (%s)", broadcast_id, exc)


async def _watch(app: web.Application) -> None:
    async with app[CHAT_BUS].subscribe(CHANNEL) as sub:
        async for data in sub:
            if data == GAP:
                continue  # missed announcements: LiveManager's periodic check covers them
            try:
                await app[LIVE].revoke_stale(data.decode())
            except Exception:  # one bad message or a registry hiccup must not stop the watch
                log.exception("key rotation of %r: checking the publisher failed", data[:64])


def setup_key_rotation(app: web.Application) -> None:
    """Watch the announcements; register after ``setup_chat`` (the bus is open by then)."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_watch(app), name="key-rotation-watch")
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    app.cleanup_ctx.append(lifecycle)
