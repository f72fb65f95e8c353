"""What viewers send: rate limits (per identity, with an abuse bound), comments through
moderation, reactions counted for the room.

A comment passes the moderator (fail-closed: a moderator that breaks holds
the comment), then is published with the ban check in the same bus call, held
for review, or rejected; the author hears why.  Reactions are only counted
here (``Room.local_reactions``); ``reactions.py`` sends them to the bus.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

from broadcaster.bus import Banned, ChatState, Held
from broadcaster.chat import protocol as proto
from broadcaster.chat.comments import new_comment
from broadcaster.chat.host import HostActions
from broadcaster.chat.metrics import ChatMetrics
from broadcaster.chat.moderation import Action, CommentModerator, ModerationOutcome
from broadcaster.chat.ratelimit import Limit
from broadcaster.chat.room import Room, Viewer

log = logging.getLogger("onair.chat")


class Abusive(Exception):
    """The client keeps flooding after rate-limit errors: close it with 1008."""


class Incoming:
    def __init__(self, bus: ChatState, metrics: ChatMetrics, moderator: CommentModerator, host: HostActions,
                 rooms: dict[str, Room], send: Callable[[Viewer, bytes], None]) -> None:
        self.bus = bus
        self.metrics = metrics
        self.moderator = moderator
        self._host = host
        self._rooms = rooms
        self._send = send
        #: told of every comment held for review (broadcast id, held comment): the webhooks hub listens
        self.on_held: Callable[[str, Held], None] | None = None

    def allow_message(self, viewer: Viewer, bucket: Limit) -> bool:
        """False (and an error event) when rate limited; raises ``Abusive`` past the abuse bound."""
        if bucket.take():
            return True
        self.metrics.rate_limited.inc()
        if not viewer.abuse.take():
            raise Abusive()
        self._send(viewer, proto.error_event("rate_limited", "too many messages; slow down"))
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
                await self._host.publish_comment(bid, comment, author_id=viewer.viewer_id, address=viewer.address)
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
            if self.on_held is not None:
                self.on_held(bid, held)
            self._send(viewer, proto.error_event("held_for_review", "your comment is held for review",
                                                 held_id=held.id, reason=outcome.reason))
        else:
            self._send(viewer, proto.error_event("rejected", outcome.reason or "comment rejected",
                                                 reason=outcome.reason, filter=outcome.filter))

    def handle_react(self, viewer: Viewer, message: proto.React) -> None:
        if not self.allow_message(viewer, viewer.reactions):
            return
        room = self._rooms.get(viewer.broadcast_id)
        if room is not None:
            room.local_reactions[message.kind] = room.local_reactions.get(message.kind, 0) + 1

    def _refuse_banned(self, viewer: Viewer) -> None:
        self.metrics.comments.labels("banned").inc()
        self._send(viewer, proto.error_event("banned", "you are banned from this chat"))
