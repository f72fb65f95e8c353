"""Rotating a stream key ends the publish that used the old one, on whichever node it is.

``POST /api/broadcasts/{id}/rotate-key`` stores the new key, checks this
node's publisher of the broadcast at once and announces the rotation on the
bus channel ``ingest:keys``; every node (one node: this one, through the
memory bus; many: all of them, through Redis) checks its own publisher of the
broadcast against the registry and drops it when the key it was accepted
with is no longer the broadcast's (``revoke_stale``).  The publisher's RTMP
connection or WHIP session closes; the broadcast waits its reconnect grace
for a publisher with the new key.  An announcement lost while Redis is away
is made up for by a check of every live publisher here once a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from broadcaster.bus import GAP, BusUnavailable
from broadcaster.keys import CHAT_BUS, LIVE, STORE
from broadcaster.registry import secret_matches
from ingest.redact import redact

log = logging.getLogger("onair.keys")

CHANNEL = "ingest:keys"


#: seconds between checks of every live publisher's key (for a missed announcement)
CHECK_INTERVAL = 1.0


async def revoke_stale(app: web.Application, broadcast_id: str) -> bool:
    """Drop the broadcast's publisher on this node if its key is no longer the broadcast's."""
    sink = app[LIVE].publishers().get(broadcast_id)
    if sink is None:
        return False
    broadcast = await app[STORE].get(broadcast_id)
    if sink.closed or (broadcast is not None and secret_matches(broadcast.stream_key, sink.stream_key)):
        return False
    log.warning("publisher of %s disconnected: its stream key %s was rotated", broadcast_id, redact(sink.stream_key))
    sink.disconnect()  # the edge closes its connection / session ...
    await sink.close("stream key rotated")  # ... and the broadcast waits its grace for the new key
    return True


async def announce_rotation(app: web.Application, broadcast_id: str) -> None:
    """Called once the new key is stored."""
    await revoke_stale(app, broadcast_id)
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
                await revoke_stale(app, data.decode())
            except Exception:  # one bad message or a registry hiccup must not stop the watch
                log.exception("key rotation of %r: checking the publisher failed", data[:64])


async def _check(app: web.Application) -> None:
    while True:
        await asyncio.sleep(CHECK_INTERVAL)
        for broadcast_id in list(app[LIVE].publishers()):
            try:
                await revoke_stale(app, broadcast_id)
            except Exception as exc:  # the registry is unreachable: check again next time
                log.debug("key check of %s failed: %s", broadcast_id, exc)


def setup_key_rotation(app: web.Application) -> None:
    """Watch the announcements and check live keys; register after ``setup_chat`` (the bus is open by then)."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_watch(app), name="key-rotation-watch"),
                 asyncio.create_task(_check(app), name="key-rotation-check")]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.cleanup_ctx.append(lifecycle)
