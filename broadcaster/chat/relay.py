"""The chat/reactions relay of one node: rooms, viewers, the fan-out tick.

Per broadcast with local viewers there is one ``Room``: one bus subscription
read by one task.  Events are not written as they arrive: they are framed
(each once) into the room's event list, and every ``tick`` the events a viewer
has not had yet are joined into one byte string and written to its socket's
transport.  Writes are the cost at scale (one send per socket, mostly kernel
time): a viewer gets one batch per ``interval`` (a longer one in a large room,
and as long as ``room_write_rate`` requires), and a room's viewers are spread
over ``GROUPS`` groups written in turn, a share of them per ``tick``, so no
tick writes a whole room and a comment waits for its viewers' next turn, not
for a whole room's writes.  A socket whose transport write buffer would pass
``send_buffer_limit`` is closed with 4000 instead of growing.
Reactions are summed per room and sent to the bus once per tick (one atomic
HINCRBY-and-publish per room); the identities connected here are reported
every ``presence_interval`` (``presence.py``: viewers are counted by identity).
Who a viewer is and what it may do come from ``identity.py``, ``quotas.py``
and ``bans.py``.

Comment order is the bus' ``seq``: the room tracks the highest seq it has seen
and backfills from history when it sees a hole (lost messages while Redis was
away), so every node shows the same comments in the same order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from broadcaster.bus import GAP, Banned, Bus, BusUnavailable, Held
from broadcaster.chat import protocol as proto
from broadcaster.chat.bans import BANNED_EVENT, ChatBans, Refused
from broadcaster.chat.comments import comment_fields, comment_json, frame_payload, new_comment, resolve_since
from broadcaster.chat.identity import Identity
from broadcaster.chat.metrics import ChatMetrics
from broadcaster.chat.moderation import Action, CommentModerator, ModerationOutcome, NoModeration
from broadcaster.chat.presence import Presence
from broadcaster.chat.quotas import AddressLimits, ViewerLimits
from broadcaster.chat.ratelimit import Limit, TokenBucket
from broadcaster.chat.sendmany import direct_fd, send_batch

log = logging.getLogger("onair.chat")

#: groups a room's viewers are spread over: a tick writes the groups g ≡ tick (mod every)
GROUPS = 60


@dataclass(frozen=True)
class ChatSettings:
    #: how often the fan-out writes: each tick writes the viewers whose batch is due
    tick: float = 0.025
    #: the shortest time between two batches to one viewer (events are coalesced
    #: meanwhile): one send per viewer per interval is the fan-out's cost
    interval: float = 0.05
    #: rooms with at least this many local viewers use ``large_interval``: half
    #: the writes where writes are the cost
    large_room: int = 1000
    large_interval: float = 0.1
    #: socket writes per second one room's fan-out may cost (0: no cap); a room too
    #: large for its interval gets a longer one.  Each write is a send syscall, about 8-10 µs
    #: of CPU all told on the 2-core benchmark machine (loopback, where the receiving side
    #: is charged to the sender too).  At the defaults, 10,000 viewers get a batch every
    #: 200 ms (50,000 writes/s, 0.41-0.47 core there; a comment's p99 about 205 ms).
    room_write_rate: float = 52_000.0
    #: sockets written per slice of a tick before the loop yields to other work: a
    #: comment's way to the screen (read, Redis round trips, bus message) waits
    #: for at most one slice per step, not for a whole tick's writes
    write_slice: int = 250
    #: send batches to plain TCP sockets with nothing queued on their transport from one
    #: C pass (``broadcaster/chat/_sendmany.c``) instead of one ``transport.write`` each;
    #: False, or the extension not built: every write goes through the transport
    direct_send: bool = True
    #: viewers that join one after the other and go to the same group (then the next run
    #: goes to the smallest group): their sockets' kernel objects were allocated together,
    #: and a batch written to neighbours touches less memory: 7.7 instead of 10.2 µs of CPU
    #: per write on loopback (``python -m benchmarks.fanout_write --order runs|strided``)
    join_run: int = 32
    #: WebSocket ping interval (aiohttp closes a socket that does not answer)
    heartbeat: float | None = 30.0
    #: comments in history / on join
    history_limit: int = 50
    #: a viewer whose server-side send buffer would pass this is closed (4000)
    send_buffer_limit: int = 1 << 20
    #: kernel send buffer per viewer socket (bounds the memory outside Python too)
    socket_sndbuf: int = 64 * 1024
    #: per identity (all its sockets on this node, across reconnects)
    comment_rate: float = 3.0
    comment_burst: float = 10.0
    react_rate: float = 20.0
    react_burst: float = 60.0
    #: rate-limit errors a client may cause (refilling at 2/s) before 1008
    abuse_burst: float = 20.0
    #: per network address on this node (``quotas.py``); None: from the node's configuration
    address_limits: AddressLimits | None = None
    presence_interval: float = 1.0
    presence_ttl: float = 5.0
    hello_timeout: float = 10.0
    #: seconds a room without viewers stays subscribed
    room_linger: float = 5.0
    redis_prefix: str = "onair:chat:"


def channel_of(broadcast_id: str) -> str:
    # The hash tag keeps the channel on the same cluster slot as the keys.
    return f"{{{broadcast_id}}}"


@dataclass(eq=False, slots=True)
class Viewer:
    """One connected socket, after its hello."""
    ws: web.WebSocketResponse
    transport: asyncio.Transport
    broadcast_id: str
    viewer_id: str
    name: str
    comments: Limit
    reactions: Limit
    abuse: TokenBucket
    #: "viewer", or the verified "host"/"moderator" of a console token
    role: str = "viewer"
    #: the keyed hash of the socket's network address (quotas.address_key), for address bans
    address: str = ""
    closed: bool = False
    close_handle: asyncio.TimerHandle | None = None
    #: the room's group (of GROUPS) this viewer is written with
    group: int = 0
    #: the socket's fd when batches may be sent on it directly (sendmany.direct_fd), else -1
    fd: int = -1

    def author(self) -> dict[str, str]:
        return {"id": self.viewer_id, "name": self.name, "role": self.role}


@dataclass(eq=False)
class Room:
    broadcast_id: str
    channel: str
    viewers: set[Viewer] = field(default_factory=set)
    #: the viewers by group, in the order they joined (a dict as an ordered set): a batch is
    #: written in that order, which in a join storm is the order of the sockets' kernel objects
    groups: list[dict[Viewer, None]] = field(default_factory=lambda: [{} for _ in range(GROUPS)])
    #: framed events some group has not been sent yet; ``events[0]`` is event number ``events_base``
    events: list[bytes] = field(default_factory=list)
    events_base: int = 0
    #: per group: the number of the next event to send it, and the seq of the last comment sent
    cursors: list[int] = field(default_factory=lambda: [0] * GROUPS)
    sent_seq: list[int] = field(default_factory=lambda: [0] * GROUPS)
    #: (seq, comment id, frame) of recent comments, for joiners racing a tick
    recent: deque[tuple[int, str, bytes]] = field(default_factory=lambda: deque(maxlen=256))
    seen_seq: int = 0
    #: the group joiners go to, and how many have since it was chosen
    run_group: int = -1
    run_length: int = 0
    reaction_delta: dict[str, int] = field(default_factory=dict)
    reaction_totals: dict[str, int] = field(default_factory=dict)
    local_reactions: dict[str, int] = field(default_factory=dict)
    viewer_total: int = 0
    viewers_changed: bool = False
    pinned: dict[str, Any] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    empty_since: float | None = None


class ChatRelay:
    def __init__(self, bus: Bus, node_id: str, moderator: CommentModerator | None = None,
                 settings: ChatSettings | None = None, metrics: ChatMetrics | None = None) -> None:
        self.bus = bus
        self.node_id = node_id
        self.moderator: CommentModerator = moderator or NoModeration()
        self.settings = settings or ChatSettings()
        self.metrics = metrics or ChatMetrics()
        self.rooms: dict[str, Room] = {}
        self.presence = Presence()
        self.bans = ChatBans(self, channel_of)
        #: viewers that have left since start (the heap freezer's sign that frozen garbage piles up)
        self.departures = 0
        self.secret = b""
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        #: set while any room exists: the tick and reaction loops sleep on it on an idle node,
        #: instead of waking ten times a second for nothing
        self._has_rooms = asyncio.Event()

    # --- life --------------------------------------------------------------------
    async def start(self, secret_candidate: bytes) -> None:
        self.secret = await self.bus.cluster_secret(secret_candidate)
        self._tasks = [asyncio.create_task(self._tick_loop(), name="chat-tick"),
                       asyncio.create_task(self._reaction_loop(), name="chat-reactions"),
                       asyncio.create_task(self._presence_loop(), name="chat-presence")]

    async def close(self) -> None:
        self._closing = True
        await self.close_viewers()
        tasks = self._tasks + [r.task for r in self.rooms.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self.rooms.clear()

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

    # --- rooms -------------------------------------------------------------------
    async def room(self, broadcast_id: str) -> Room:
        room = self.rooms.get(broadcast_id)
        if room is None:
            room = Room(broadcast_id, channel_of(broadcast_id))
            self.rooms[broadcast_id] = room
            self._has_rooms.set()
            room.task = asyncio.create_task(self._room_loop(room), name=f"chat-room-{broadcast_id}")
        room.empty_since = None
        try:
            await asyncio.wait_for(asyncio.shield(room.ready.wait()), 5)
        except asyncio.TimeoutError:
            raise BusUnavailable("chat state not reachable") from None
        return room

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
            self.bans.enforce(room, doc)

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

    # --- viewers -----------------------------------------------------------------
    @property
    def connected(self) -> int:
        """Viewers connected to this node, all rooms."""
        return sum(len(room.viewers) for room in self.rooms.values())

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

    async def join(self, viewer: Viewer, since: str | int | None, token: str | None = None) -> None:
        """Add the viewer to its room and send it its history; ``token`` (an anonymous
        identity's) goes to the viewer in ``history.you``.  Raises ``bans.Refused``."""
        room = await self.room(viewer.broadcast_id)
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
        self.write(viewer, b"".join(out))

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

    def write(self, viewer: Viewer, data: bytes) -> None:
        """Queue bytes on the viewer's transport, or drop the viewer if it is too slow."""
        if viewer.closed:
            return
        transport = viewer.transport
        if transport.is_closing():
            viewer.closed = True
            self.leave(viewer)
            return
        buffered = transport.get_write_buffer_size()
        if buffered + len(data) > self.settings.send_buffer_limit:
            self._drop_slow(viewer, buffered)
            return
        transport.write(data)
        self.metrics.note_buffer(buffered + len(data))

    def _drop_slow(self, viewer: Viewer, buffered: int) -> None:
        self.metrics.slow_dropped.inc()
        log.info("viewer %s of %s dropped: send buffer %d bytes (bound %d)", viewer.viewer_id,
                 viewer.broadcast_id, buffered, self.settings.send_buffer_limit)
        self.drop(viewer, proto.CLOSE_SLOW_CONSUMER, "too slow")

    def drop(self, viewer: Viewer, code: int, reason: str, last: bytes = b"") -> None:
        """Close the viewer's socket from here: ``last`` (a payload) and the close frame go out
        behind what is buffered; if the peer still does not read, the connection is aborted
        after 2 s, which frees the buffer."""
        viewer.closed = True
        self.leave(viewer)
        viewer.transport.write((proto.text_frame(last) if last else b"") + proto.close_frame(code, reason))
        viewer.close_handle = asyncio.get_running_loop().call_later(2.0, viewer.transport.abort)

    def send(self, viewer: Viewer, payload: bytes) -> None:
        self.write(viewer, proto.text_frame(payload))

    # --- incoming ----------------------------------------------------------------
    def allow_message(self, viewer: Viewer, bucket: TokenBucket) -> bool:
        """False (and an error event) when rate limited; raises ``Abusive`` past the abuse bound."""
        if bucket.take():
            return True
        self.metrics.rate_limited.inc()
        if not viewer.abuse.take():
            raise Abusive()
        self.send(viewer, proto.error_event("rate_limited", "too many messages; slow down"))
        return False

    async def handle_comment(self, viewer: Viewer, message: proto.CommentIn) -> None:
        if not self.allow_message(viewer, viewer.comments):
            return
        started = time.monotonic()
        bid = viewer.broadcast_id
        # A ban set on any node is checked in the bus: with the post itself when the
        # comment is published (one Redis round trip per comment, not two), apart otherwise.
        try:
            outcome = await self.moderator.moderate(bid, viewer.viewer_id, message.text)
        except Exception:
            # Fail closed: a moderator that breaks holds the comment for review.
            log.exception("moderation failed for a comment on %s; holding it", bid)
            outcome = ModerationOutcome(Action.HOLD, reason="moderation_error", filter="error")
        comment = new_comment(viewer.author(), message.text, message.question)
        if outcome.action is Action.PUBLISH or outcome.action is Action.PUBLISH_CENSORED:
            if outcome.action is Action.PUBLISH_CENSORED and outcome.text is not None:
                comment["text"] = outcome.text
            try:
                await self.publish_comment(bid, comment, author_id=viewer.viewer_id, address=viewer.address)
            except Banned:
                self._refuse_banned(viewer)
                return
            self.metrics.comments.labels(outcome.action.value).inc()
            self.metrics.post_seconds.observe(time.monotonic() - started)
            return
        if await self.bus.is_banned(bid, viewer.viewer_id):
            self._refuse_banned(viewer)
            return
        self.metrics.comments.labels(outcome.action.value).inc()
        if outcome.action is Action.HOLD:
            held = Held("h_" + secrets.token_urlsafe(9), {**comment, "reason": outcome.reason, "filter": outcome.filter,
                                                          "language": outcome.language})
            await self.bus.hold(bid, held)
            self.send(viewer, proto.error_event("held_for_review", "your comment is held for review",
                                                held_id=held.id, reason=outcome.reason))
        else:
            self.send(viewer, proto.error_event("rejected", outcome.reason or "comment rejected",
                                                reason=outcome.reason, filter=outcome.filter))

    def _refuse_banned(self, viewer: Viewer) -> None:
        self.metrics.comments.labels("banned").inc()
        self.send(viewer, proto.error_event("banned", "you are banned from this chat"))

    def handle_react(self, viewer: Viewer, message: proto.React) -> None:
        if not self.allow_message(viewer, viewer.reactions):
            return
        room = self.rooms.get(viewer.broadcast_id)
        if room is not None:
            room.local_reactions[message.kind] = room.local_reactions.get(message.kind, 0) + 1

    # --- host actions (called by the moderation API) ------------------------------
    async def publish_comment(self, broadcast_id: str, comment: dict[str, Any], author_id: str | None = None,
                              address: str | None = None) -> int:
        """Give ``comment`` (from ``new_comment``) its seq and publish it everywhere; with
        ``author_id``, raise ``Banned`` instead if that viewer (or its ``address``) is banned."""
        body = comment_json({k: v for k, v in comment.items() if k != "seq"})
        return await self.bus.post_comment(broadcast_id, channel_of(broadcast_id), body, author_id, address)

    async def remove_comment(self, broadcast_id: str, comment_id: str) -> bool:
        """Remove from history and from every viewer's screen on every node."""
        known = await self.bus.remove_comment(broadcast_id, comment_id)
        await self.bus.publish(channel_of(broadcast_id), proto.event("comment_removed", id=comment_id))
        return known

    async def publish_held(self, broadcast_id: str, held_id: str) -> dict[str, Any] | None:
        """Publish a held comment (approval); None if it is unknown or already handled."""
        held = await self.bus.take_held(broadcast_id, held_id)
        if held is None:
            return None
        comment = {k: v for k, v in held.comment.items() if k not in ("reason", "filter", "language")}
        comment["seq"] = await self.publish_comment(broadcast_id, comment)
        return comment

    async def reject_held(self, broadcast_id: str, held_id: str) -> bool:
        return await self.bus.take_held(broadcast_id, held_id) is not None

    async def list_held(self, broadcast_id: str) -> list[Held]:
        return await self.bus.list_held(broadcast_id)

    async def set_pinned(self, broadcast_id: str, comment: dict[str, Any] | None) -> None:
        shown = comment_fields(comment) if comment is not None else None
        if shown is not None:
            shown.pop("type", None)
        await self.bus.set_pinned(broadcast_id, shown)
        await self.bus.publish(channel_of(broadcast_id), proto.event("pinned", comment=shown))

    async def ban(self, broadcast_id: str, viewer_id: str, seconds: float | None = None,
                  address: bool = False) -> str | None:
        """Ban (``seconds`` None) or time out a viewer on every node; ``address``: its network
        address too (the key it is banned under; ``bans.AddressUnknown`` when none is known)."""
        return await self.bans.ban(broadcast_id, viewer_id, seconds, address)

    async def unban(self, broadcast_id: str, viewer_id: str) -> None:
        await self.bus.unban(broadcast_id, viewer_id)

    async def is_banned(self, broadcast_id: str, viewer_id: str) -> bool:
        return await self.bus.is_banned(broadcast_id, viewer_id)

    # --- loops ------------------------------------------------------------------
    def every(self, viewers: int) -> int:
        """Ticks between two batches to one viewer of a room of ``viewers`` local viewers."""
        s = self.settings
        interval = s.large_interval if viewers >= s.large_room else s.interval
        # (a hair under, so 0.1 / 0.025 is 4 ticks, not 5)
        by_interval = math.ceil(interval / s.tick - 1e-9)
        by_rate = math.ceil(viewers / (s.room_write_rate * s.tick)) if s.room_write_rate > 0 else 1
        return max(1, min(GROUPS, max(by_interval, by_rate)))

    def collect(self, tick_no: int = 0) -> list[tuple[Room, bytes, list[Viewer]]]:
        """One fan-out tick's work: per room, the events each due group has not
        had yet (framed once, joined into one batch) and the viewers it goes to
        (a snapshot: a viewer that joins after this point got these events in
        its history).  Each group is due every ``every`` ticks, in turn."""
        work = []
        for room in self.rooms.values():
            every = self.every(len(room.viewers))
            # Groups g with g ≡ tick_no (mod every): each group every `every` ticks (a divisor of GROUPS).
            due = range(tick_no % every, GROUPS, every)
            # Counts once per round of groups, not once per tick: the same bytes as one flush per round.
            aggregate = tick_no % every == 0
            if aggregate and room.reaction_delta:
                room.events.append(proto.text_frame(proto.event("reactions", counts=room.reaction_delta,
                                                                totals=room.reaction_totals)))
                room.reaction_delta = {}
            if aggregate and room.viewers_changed:
                room.events.append(proto.text_frame(proto.event("viewers", count=room.viewer_total)))
                room.viewers_changed = False
            base = room.events_base
            end = base + len(room.events)
            if not room.events:
                continue  # every group has had everything (the list keeps what some group has not)
            # Groups at the same point get one batch between them (all of them, in a small room).
            batches: dict[int, tuple[bytes, list[Viewer]]] = {}
            for g in due:
                start = room.cursors[g]
                room.cursors[g] = end
                room.sent_seq[g] = room.seen_seq
                if start == end or not room.groups[g]:
                    continue
                same = batches.get(start)
                if same is None:
                    batches[start] = (b"".join(room.events[start - base:]), list(room.groups[g]))
                else:
                    same[1].extend(room.groups[g])
            oldest = min(room.cursors)
            if oldest > base:
                del room.events[:oldest - base]
                room.events_base = oldest
            for batch, viewers in batches.values():
                self.metrics.batches.inc()
                work.append((room, batch, viewers))
        return work

    def flush(self, tick_no: int = 0) -> None:
        """One whole tick at once (tests and small nodes)."""
        for room, batch, viewers in self.collect(tick_no):
            self._write_many(viewers, batch)

    def _write_many(self, viewers: list[Viewer], batch: bytes) -> None:
        # The hot loop at scale (10,000 sockets per tick).  With the C pass
        # (sendmany.send_batch), every viewer whose transport holds nothing gets
        # the batch straight on its socket; the rest come back with what their
        # transports hold and are written through them here (queued bytes go
        # first) or dropped when too slow.
        if send_batch is None:
            return self._write_through(viewers, batch)
        limit = self.settings.send_buffer_limit - len(batch)
        gone, queued, short = send_batch(viewers, batch)
        for viewer, sent in short:
            # The socket took less than all (its kernel buffer is full, or the connection
            # failed): its transport queues the rest, or meets the error and closes.
            viewer.transport.write(batch[sent:] if sent else batch)
        top = 0
        slow: list[tuple[Viewer, int]] = []
        for viewer, buffered in queued:
            if buffered > limit:
                slow.append((viewer, buffered))
                continue
            viewer.transport.write(batch)
            if buffered > top:
                top = buffered
        self._after_write(len(batch) + top, gone, slow)

    def _write_through(self, viewers: list[Viewer], batch: bytes) -> None:
        """``_write_many`` without the C pass: every write through the transport, ``write`` inlined."""
        limit = self.settings.send_buffer_limit - len(batch)
        top = 0
        slow: list[tuple[Viewer, int]] = []
        gone: list[Viewer] = []
        for viewer in viewers:
            transport = viewer.transport
            if viewer.closed or transport.is_closing():
                gone.append(viewer)
                continue
            buffered = transport.get_write_buffer_size()
            if buffered > limit:
                slow.append((viewer, buffered))
                continue
            transport.write(batch)
            if buffered > top:
                top = buffered
        self._after_write(len(batch) + top, gone, slow)

    def _after_write(self, most_buffered: int, gone: list[Viewer], slow: list[tuple[Viewer, int]]) -> None:
        self.metrics.note_buffer(most_buffered)
        for viewer in gone:
            viewer.closed = True
            self.leave(viewer)
        for viewer, buffered in slow:
            if not viewer.closed:
                self._drop_slow(viewer, buffered)

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        tick = self.settings.tick
        chunk = max(1, self.settings.write_slice)
        tick_no = 0
        deadline = loop.time()
        while True:
            if not self.rooms:
                self._has_rooms.clear()
                await self._has_rooms.wait()
                deadline = loop.time()
            deadline += tick
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            if loop.time() - deadline > tick:
                deadline = loop.time()  # fell behind: don't try to catch up in a burst
            tick_no += 1
            started = loop.time()
            try:
                work = self.collect(tick_no)
                for room, batch, viewers in work:
                    # Thousands of writes (a syscall each) in slices, yielding in
                    # between, so Redis replies and incoming comments are not held
                    # up behind one long write loop.  Batch order per socket holds:
                    # the next tick starts after this one is written.
                    for i in range(0, len(viewers), chunk):
                        self._write_many(viewers[i:i + chunk], batch)
                        if i + chunk < len(viewers):
                            await asyncio.sleep(0)
                if work:
                    self.metrics.flush_seconds.observe(loop.time() - started)
            except Exception:
                log.exception("chat tick failed")

    async def _reaction_loop(self) -> None:
        while True:
            if not self.rooms:
                self._has_rooms.clear()
                await self._has_rooms.wait()
            await asyncio.sleep(max(self.settings.tick, 0.1))
            for room in list(self.rooms.values()):
                if not room.local_reactions:
                    continue
                counts, room.local_reactions = room.local_reactions, {}
                try:
                    await self.bus.add_reactions(room.broadcast_id, room.channel, counts, self.node_id)
                except BusUnavailable:
                    # Keep them for the next tick: nothing lost while Redis restarts.
                    for kind, n in counts.items():
                        room.local_reactions[kind] = room.local_reactions.get(kind, 0) + n

    async def _presence_loop(self) -> None:
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
        now = time.monotonic()
        for bid, room in list(self.rooms.items()):
            if not room.viewers and room.empty_since is not None and now - room.empty_since > self.settings.room_linger:
                del self.rooms[bid]
                self.presence.forget(bid)
                if room.task is not None:
                    room.task.cancel()
                    try:
                        await room.task
                    except asyncio.CancelledError:
                        pass
        totals = await self.presence.sync(self.bus, self.node_id, list(self.rooms), self.settings.presence_ttl)
        for bid, total in totals.items():
            room = self.rooms.get(bid)
            if room is not None and total != room.viewer_total:
                room.viewer_total = total
                room.viewers_changed = True
        if rounds % 5 == 4:
            # Re-assert the cluster secret: a Redis restarted without persistence lost it.
            secret = await self.bus.cluster_secret(self.secret)
            if secret != self.secret:
                log.warning("cluster secret in the bus differs from this node's; tokens of one side will fail")


class Abusive(Exception):
    """The client keeps flooding after rate-limit errors: close it with 1008."""
