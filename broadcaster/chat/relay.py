"""The chat/reactions relay of one node: the parts, wired, and their life.

Each concern lives in its own module; ``ChatRelay`` builds them over one bus
and owns their tasks:

- ``rooms.py`` — ``RoomSync``: a room per broadcast with local viewers, kept
  in sync with the bus (one subscription, comment order by ``seq``, backfill)
- ``admission.py`` — ``Admission``: a socket becomes a viewer, joins with its
  history (bans checked in the same bus call, ``bans.py``), leaves
- ``fanout.py`` — ``FanOut``: the tick that batches each room's events per
  group of viewers, and the one write path (C pass, slow viewers dropped)
- ``incoming.py`` — ``Incoming``: rate limits and comments through moderation
- ``host.py`` — ``HostActions``: what the moderation API does to the chat
- ``reactions.py`` and ``presence.py`` — reactions summed per room per tick;
  viewers counted by identity across nodes
- ``room.py``, ``settings.py`` — the records and the knobs

Who a viewer is and what it may do come from ``identity.py``, ``quotas.py``
and ``bans.py``.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from broadcaster.bus import Bus, BusUnavailable
from broadcaster.chat import protocol as proto
from broadcaster.chat.admission import Admission
from broadcaster.chat.bans import ChatBans
from broadcaster.chat.comments import new_comment
from broadcaster.chat.fanout import FanOut
from broadcaster.chat.host import ChatRecorder, HostActions
from broadcaster.chat.identity import Identity
from broadcaster.chat.incoming import Abusive, Incoming
from broadcaster.chat.metrics import ChatMetrics
from broadcaster.chat.moderation import CommentModerator, NoModeration
from broadcaster.chat.presence import Presence
from broadcaster.chat.quotas import ViewerLimits
from broadcaster.chat.ratelimit import Limit
from broadcaster.chat.reactions import send_reactions
from broadcaster.chat.room import GROUPS, Room, Viewer, channel_of
from broadcaster.chat.rooms import RoomSync
from broadcaster.chat.settings import ChatSettings

log = logging.getLogger("onair.chat")


class ChatRelay:
    def __init__(self, bus: Bus, node_id: str, moderator: CommentModerator | None = None,
                 settings: ChatSettings | None = None, metrics: ChatMetrics | None = None,
                 host: HostActions | None = None) -> None:
        """``host``: the node's one ``HostActions`` over ``bus`` (the moderation API's too); a new one
        when not given."""
        self.bus = bus
        self.node_id = node_id
        self.settings = settings or ChatSettings()
        self.metrics = metrics or ChatMetrics()
        self.presence = Presence()
        self.secret = b""
        self.room_sync = RoomSync(bus, self.metrics, lambda room, doc: ChatBans.enforce(room, doc, self.fanout.drop))
        self.rooms: dict[str, Room] = self.room_sync.rooms
        self.fanout = FanOut(self.settings, self.metrics, self.room_sync, lambda viewer: self.admission.leave(viewer))
        self.host = host or HostActions(bus)
        self.admission = Admission(bus, self.settings, self.metrics, self.room_sync, self.presence,
                                   self.host.chat_bans)
        self.incoming = Incoming(bus, self.metrics, moderator or NoModeration(), self.host, self.rooms,
                                 self.fanout.send)
        self._tasks: list[asyncio.Task[None]] = []

    # --- life --------------------------------------------------------------------
    async def start(self, secret_candidate: bytes) -> None:
        self.secret = await self.bus.cluster_secret(secret_candidate)
        self._tasks = [asyncio.create_task(self.fanout.run(), name="chat-tick"),
                       asyncio.create_task(send_reactions(self.bus, self.room_sync, self.node_id, self.settings.tick,
                                                          self.host),
                                           name="chat-reactions"),
                       asyncio.create_task(self._presence_loop(), name="chat-presence")]

    async def close(self) -> None:
        await self.close_viewers()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.room_sync.close()

    async def close_viewers(self) -> None:
        """Close every socket with GOING_AWAY (on shutdown)."""
        viewers = [v for room in self.rooms.values() for v in room.viewers]
        for viewer in viewers:
            viewer.closed = True
        if viewers:
            await asyncio.wait([asyncio.create_task(self._close_ws(v.ws, proto.CLOSE_GOING_AWAY, "server shutdown"))
                                for v in viewers], timeout=3)
        for viewer in viewers:
            if viewer.close_handle is not None:
                viewer.close_handle.cancel()
            viewer.transport.abort()

    @staticmethod
    async def _close_ws(ws: web.WebSocketResponse, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(ws.close(code=code, message=reason.encode()), 2)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            pass

    async def _presence_loop(self) -> None:
        """Every ``presence_interval``: close idle rooms, report presence, re-assert the secret."""
        rounds = 0
        while True:
            try:
                await self._presence_round(rounds)
            except BusUnavailable as exc:
                log.debug("presence: %s", exc)
            except Exception:
                log.exception("presence round failed")
            rounds += 1
            await asyncio.sleep(self.settings.presence_interval)

    async def _presence_round(self, rounds: int) -> None:
        await self.room_sync.expire_idle(self.settings.room_linger, self.presence.forget)
        totals = await self.presence.sync(self.bus, self.node_id, list(self.rooms), self.settings.presence_ttl)
        self.room_sync.set_viewer_totals(totals)
        if rounds % 5 == 4:
            # Re-assert the cluster secret: a Redis restarted without persistence lost it.
            secret = await self.bus.cluster_secret(self.secret)
            if secret != self.secret:
                log.warning("cluster secret in the bus differs from this node's; tokens of one side will fail")

    # --- the WebSocket endpoint's calls (ws.py) -------------------------------------
    @property
    def connected(self) -> int:
        """Viewers connected to this node, all rooms."""
        return sum(len(room.viewers) for room in self.rooms.values())

    @property
    def departures(self) -> int:
        """Viewers that have left since start (the heap freezer's sign that frozen garbage piles up)."""
        return self.admission.departures

    @property
    def moderator(self) -> CommentModerator:
        return self.incoming.moderator

    @moderator.setter
    def moderator(self, moderator: CommentModerator) -> None:
        self.incoming.moderator = moderator

    def new_viewer(self, ws: web.WebSocketResponse, transport: asyncio.Transport, broadcast_id: str,
                   identity: Identity, limits: ViewerLimits, address: str = "") -> Viewer:
        return self.admission.new_viewer(ws, transport, broadcast_id, identity, limits, address)

    async def join(self, viewer: Viewer, since: str | int | None, token: str | None = None) -> None:
        """Add the viewer to its room and send it its history.  Raises ``bans.Refused``."""
        greeting = await self.admission.join(viewer, since, token)
        self.fanout.write([viewer], greeting)  # (nothing awaited since the join: no tick in between)

    def leave(self, viewer: Viewer) -> None:
        self.admission.leave(viewer)

    def send(self, viewer: Viewer, payload: bytes) -> None:
        self.fanout.send(viewer, payload)

    def drop(self, viewer: Viewer, code: int, reason: str, last: bytes = b"") -> None:
        self.fanout.drop(viewer, code, reason, last)

    def allow_message(self, viewer: Viewer, bucket: Limit) -> bool:
        return self.incoming.allow_message(viewer, bucket)

    async def handle_comment(self, viewer: Viewer, message: proto.CommentIn) -> None:
        await self.incoming.handle_comment(viewer, message)

    def handle_react(self, viewer: Viewer, message: proto.React) -> None:
        self.incoming.handle_react(viewer, message)

    # --- the fan-out (tests and benchmarks) --------------------------------------------
    def every(self, viewers: int) -> int:
        return self.fanout.every(viewers)

    def collect(self, tick_no: int = 0) -> list[tuple[Room, bytes, list[Viewer]]]:
        return self.fanout.collect(tick_no)

    def flush(self, tick_no: int = 0) -> None:
        self.fanout.flush(tick_no)

    # --- host actions: ``self.host`` (host.py); the recordings' hook on them ----------------------
    @property
    def recorder(self) -> ChatRecorder | None:
        return self.host.recorder

    @recorder.setter
    def recorder(self, recorder: ChatRecorder | None) -> None:
        self.host.recorder = recorder

    async def erase_broadcast_chat(self, broadcast_id: str) -> None:
        """Forget the broadcast's chat (its recording is deleted): the bus's history, reaction totals and
        pinned comment, and what this node's room keeps of them for joiners."""
        await self.bus.erase_history(broadcast_id)
        room = self.rooms.get(broadcast_id)
        if room is not None:
            room.recent.clear()
            room.reaction_totals = {}
            room.pinned = None


__all__ = ["GROUPS", "Abusive", "ChatRelay", "ChatSettings", "Room", "Viewer", "channel_of", "new_comment"]
