"""Admitting viewers: a socket becomes a ``Viewer``, joins its room with its history, and leaves.

A join asks the bus in one round trip whether the identity or its network
address is banned and reads the history (``Bus.admit_with_history``); from
then on nothing awaits, so the join is atomic with respect to the fan-out's
tick: the viewer goes to one of the groups written last, and its history holds
every comment some viewer here was sent (``Room.recent`` covers the comments
flushed after the history read).  ``join`` returns the greeting (history,
pinned comment, reaction totals, viewer count) for the caller to write.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

from aiohttp import web

from broadcaster.bus import ChatState
from broadcaster.chat import protocol as proto
from broadcaster.chat.bans import ChatBans, Refused
from broadcaster.chat.comments import comment_fields, frame_payload, resolve_since
from broadcaster.chat.identity import Identity
from broadcaster.chat.metrics import ChatMetrics
from broadcaster.chat.presence import Presence
from broadcaster.chat.quotas import ViewerLimits
from broadcaster.chat.room import GROUPS, Viewer
from broadcaster.chat.rooms import RoomSync
from broadcaster.chat.sendmany import direct_fd
from broadcaster.chat.settings import ChatSettings


class Admission:
    def __init__(self, bus: ChatState, settings: ChatSettings, metrics: ChatMetrics, rooms: RoomSync,
                 presence: Presence, bans: ChatBans) -> None:
        self.bus = bus
        self.settings = settings
        self.metrics = metrics
        self._sync = rooms
        self.rooms = rooms.rooms
        self.presence = presence
        self.bans = bans
        #: viewers that have left since start (the heap freezer's sign that frozen garbage piles up)
        self.departures = 0

    def new_viewer(self, ws: web.WebSocketResponse, transport: asyncio.Transport, broadcast_id: str,
                   identity: Identity, limits: ViewerLimits, address: str = "") -> Viewer:
        s = self.settings
        sock = transport.get_extra_info("socket")
        if sock is not None and s.socket_sndbuf:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, s.socket_sndbuf)
            except OSError:
                pass
        return Viewer(ws, transport, broadcast_id, identity.viewer_id, identity.name, limits.comments,
                      limits.reactions, limits.abuse, identity.role, address,
                      fd=direct_fd(transport) if s.direct_send else -1)

    async def join(self, viewer: Viewer, since: str | int | None, token: str | None = None) -> bytes:
        """Add the viewer to its room; its greeting (frames) to write at once.  ``token`` (an
        anonymous identity's) goes to the viewer in ``history.you``.  Raises ``bans.Refused``."""
        room = await self._sync.room(viewer.broadcast_id)
        admission, history = await self.bus.admit_with_history(viewer.broadcast_id, viewer.viewer_id, viewer.address)
        refusal = self.bans.refusal(admission)
        if refusal is not None:
            raise Refused(refusal)
        # From here on nothing awaits: the join is atomic with respect to the tick.
        # The viewer joins one of the groups written last (so its history holds every comment
        # some viewer here was sent) and gets every event sent to that group from now on.
        # Viewers that join one after the other go to the same group, in runs of ``join_run``,
        # each run to the smallest such group.
        latest = max(room.cursors)
        if (room.run_length < self.settings.join_run and room.run_group >= 0
                and room.cursors[room.run_group] == latest):
            room.run_length += 1
        else:
            room.run_group = min((g for g in range(GROUPS) if room.cursors[g] == latest),
                                 key=lambda g: len(room.groups[g]))
            room.run_length = 1
        viewer.group = room.run_group
        flushed = room.sent_seq[viewer.group]
        comments = [c for c in history if int(c["seq"]) <= flushed]
        known = {c["id"] for c in comments}
        top = max((int(c["seq"]) for c in comments), default=0)
        for seq, comment_id, frame in room.recent:
            # Flushed after our history read: not in it, but already sent to the others.
            if top < seq <= flushed and comment_id not in known:
                comments.append(json.loads(frame_payload(frame)))
        since_seq = resolve_since(comments, since)
        shown = [comment_fields(c) for c in comments if not c.get("removed") and int(c["seq"]) > since_seq]
        shown = shown[-self.settings.history_limit:]
        you = {**viewer.author(), **({"token": token} if token else {})}
        new_here = not self.presence.has(viewer.broadcast_id, viewer.viewer_id)
        out = [proto.text_frame(proto.event("history", comments=shown, you=you)),
               proto.text_frame(proto.event("pinned", comment=room.pinned)),
               proto.text_frame(proto.event("reactions", counts={}, totals=room.reaction_totals)),
               proto.text_frame(proto.event("viewers", count=max(room.viewer_total + new_here,
                                                                 self.presence.local(viewer.broadcast_id) + new_here)))]
        room.viewers.add(viewer)
        self.presence.join(viewer.broadcast_id, viewer.viewer_id)
        room.groups[viewer.group][viewer] = None
        self.metrics.viewers.inc()
        return b"".join(out)

    def leave(self, viewer: Viewer) -> None:
        room = self.rooms.get(viewer.broadcast_id)
        if room is not None and viewer in room.viewers:
            room.viewers.discard(viewer)
            room.groups[viewer.group].pop(viewer, None)
            self.presence.leave(viewer.broadcast_id, viewer.viewer_id)
            self.metrics.viewers.dec()
            self.departures += 1
            if not room.viewers:
                room.empty_since = time.monotonic()
        if viewer.close_handle is not None:
            viewer.close_handle.cancel()
            viewer.close_handle = None
