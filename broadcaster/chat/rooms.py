"""Rooms kept in sync with the bus: one subscription and one reader task per room.

``RoomSync.room`` opens a broadcast's room (or finds it) and waits until its
reader has read the room's state (last seq, reaction totals, pinned comment).
The reader turns each bus message into framed events on the room's event list
(the fan-out writes them, ``fanout.py``).  Comment order is the bus' ``seq``:
the room tracks the highest seq it has seen and backfills from history when
it sees a hole (messages lost while Redis was away, or the bus' ``GAP``), so
every node shows the same comments in the same order.  A reader that fails is
restarted; a room without viewers for ``room_linger`` is closed
(``expire_idle``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from broadcaster.bus import GAP, Bus, BusUnavailable
from broadcaster.chat import protocol as proto
from broadcaster.chat.bans import BANNED_EVENT
from broadcaster.chat.comments import comment_json
from broadcaster.chat.metrics import ChatMetrics
from broadcaster.chat.room import GROUPS, Room, channel_of

log = logging.getLogger("onair.chat")


class RoomSync:
    def __init__(self, bus: Bus, metrics: ChatMetrics, on_banned: Callable[[Room, dict[str, Any]], None]) -> None:
        self.bus = bus
        self.metrics = metrics
        self.rooms: dict[str, Room] = {}
        #: set while any room exists: the tick and reaction loops sleep on it on an idle node,
        #: instead of waking ten times a second for nothing
        self.has_rooms = asyncio.Event()
        self._on_banned = on_banned

    async def room(self, broadcast_id: str) -> Room:
        room = self.rooms.get(broadcast_id)
        if room is None:
            room = Room(broadcast_id, channel_of(broadcast_id))
            self.rooms[broadcast_id] = room
            self.has_rooms.set()
            room.task = asyncio.create_task(self._room_loop(room), name=f"chat-room-{broadcast_id}")
        room.empty_since = None
        try:
            await asyncio.wait_for(asyncio.shield(room.ready.wait()), 5)
        except asyncio.TimeoutError:
            raise BusUnavailable("chat state not reachable") from None
        return room

    async def wait_for_rooms(self) -> bool:
        """Sleep while there is no room; True if it slept (the caller's clock restarts)."""
        if self.rooms:
            return False
        self.has_rooms.clear()
        await self.has_rooms.wait()
        return True

    async def expire_idle(self, linger: float, forget: Callable[[str], None]) -> None:
        """Close the rooms without viewers for ``linger`` seconds (``forget`` each one's broadcast)."""
        now = time.monotonic()
        for bid, room in list(self.rooms.items()):
            if not room.viewers and room.empty_since is not None and now - room.empty_since > linger:
                del self.rooms[bid]
                forget(bid)
                if room.task is not None:
                    room.task.cancel()
                    try:
                        await room.task
                    except asyncio.CancelledError:
                        pass

    def set_viewer_totals(self, totals: dict[str, int]) -> None:
        """The distinct viewers of each broadcast across nodes (presence): shown at the next round."""
        for bid, total in totals.items():
            room = self.rooms.get(bid)
            if room is not None and total != room.viewer_total:
                room.viewer_total = total
                room.viewers_changed = True

    async def close(self) -> None:
        tasks = [r.task for r in self.rooms.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.rooms.clear()

    async def _room_loop(self, room: Room) -> None:
        while True:
            try:
                await self._room_reader(room)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A reader must not die silently and leave its viewers without events.
                log.exception("room %s: reader failed; restarting it", room.broadcast_id)
                await asyncio.sleep(1.0)

    async def _room_reader(self, room: Room) -> None:
        async with self.bus.subscribe(room.channel) as sub:
            while True:
                try:
                    room.seen_seq = await self.bus.last_seq(room.broadcast_id)
                    room.sent_seq = [room.seen_seq] * GROUPS
                    room.reaction_totals = await self.bus.reaction_totals(room.broadcast_id)
                    room.pinned = await self.bus.pinned(room.broadcast_id)
                    break
                except BusUnavailable:
                    await asyncio.sleep(0.5)
            room.ready.set()
            async for data in sub:
                try:
                    if data == GAP:
                        await self._backfill(room, None)
                    else:
                        await self._on_bus_message(room, data)
                except BusUnavailable as exc:
                    log.warning("room %s: backfill failed: %s", room.broadcast_id, exc)
                except (ValueError, KeyError, TypeError):
                    log.warning("room %s: malformed bus message dropped", room.broadcast_id)

    async def _on_bus_message(self, room: Room, data: bytes) -> None:
        doc = json.loads(data)
        kind = doc.get("type")
        if kind == "comment":
            seq = int(doc["seq"])
            if seq <= room.seen_seq:
                return  # already delivered (backfill raced the live message)
            if room.seen_seq and seq > room.seen_seq + 1:
                await self._backfill(room, seq)
            self._add_comment(room, seq, doc["id"], data)
            self.metrics.bus_lag_seconds.observe(max(0.0, time.time() - doc.get("ts", 0) / 1000))
        elif kind == "reactions":
            for name, n in doc.get("counts", {}).items():
                room.reaction_delta[name] = room.reaction_delta.get(name, 0) + int(n)
            # Published atomically with the increment: the latest message has the latest totals.
            room.reaction_totals = {k: int(v) for k, v in doc.get("totals", {}).items()}
        elif kind == "comment_removed":
            # Also forget it for joiners that race the tick (they get no removal event).
            removed = doc["id"]
            if any(entry[1] == removed for entry in room.recent):
                room.recent = deque((e for e in room.recent if e[1] != removed), maxlen=room.recent.maxlen)
            room.events.append(proto.text_frame(data))
        elif kind == "pinned":
            room.pinned = doc.get("comment")
            room.events.append(proto.text_frame(data))
        elif kind == BANNED_EVENT:
            self._on_banned(room, doc)

    def _add_comment(self, room: Room, seq: int, comment_id: str, data: bytes) -> None:
        frame = proto.text_frame(data)
        room.seen_seq = seq
        room.events.append(frame)
        room.recent.append((seq, comment_id, frame))

    async def _backfill(self, room: Room, before: int | None) -> None:
        """Add the comments with seq in (seen_seq, before) from the shared history."""
        history = await self.bus.history(room.broadcast_id)
        for comment in history:
            seq = int(comment["seq"])
            if seq > room.seen_seq and (before is None or seq < before) and not comment.get("removed"):
                comment.pop("removed", None)
                self._add_comment(room, seq, comment["id"], comment_json(comment))
                self.metrics.backfilled.inc()
