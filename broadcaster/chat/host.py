"""Host actions on the chat: publish, remove, hold queue, pin, ban — ``moderation.actions.ChatControl``.

One ``HostActions`` per node, made with the bus where the node opens its
shared state (``broadcaster/app.py``), so a host's request goes handler →
``ModerationActions`` → here → the bus, whether or not the relay has started.
Each acts on the shared chat state in the bus and tells every node's rooms on
the broadcast's channel; the rooms (``rooms.py``) turn the messages into
events for their viewers.  The relay posts its viewers' comments through the
same object, so the recordings' recorder sees every comment and removal.
"""

from __future__ import annotations

from typing import Any, Protocol

from broadcaster.bus import Bus
from broadcaster.chat import protocol as proto
from broadcaster.chat.bans import ChatBans
from broadcaster.chat.comments import comment_fields, comment_json
from broadcaster.chat.room import channel_of
from broadcaster.playback.access import announce
from moderation.bans import BanRecord


class ChatRecorder(Protocol):
    """Keeps what the chat publishes for the recordings' chat replay (``broadcaster.recordings``)."""

    async def comment(self, broadcast_id: str, comment: dict[str, Any]) -> None: ...
    async def comment_removed(self, broadcast_id: str, comment_id: str) -> None: ...
    async def reactions(self, broadcast_id: str, counts: dict[str, int]) -> None: ...


class HostActions:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.chat_bans = ChatBans(bus, channel_of)
        #: every published comment and removal goes to it too (set by the recordings, when there)
        self.recorder: ChatRecorder | None = None

    async def publish_comment(self, broadcast_id: str, comment: dict[str, Any], author_id: str | None = None,
                              address: str | None = None) -> int:
        """Give ``comment`` (from ``new_comment``) its seq and publish it everywhere; with
        ``author_id``, raise ``Banned`` instead if that viewer (or its ``address``) is banned."""
        body = comment_json({k: v for k, v in comment.items() if k != "seq"})
        seq = await self.bus.post_comment(broadcast_id, channel_of(broadcast_id), body, author_id, address)
        if self.recorder is not None:
            await self.recorder.comment(broadcast_id, {**comment, "seq": seq})
        return seq

    async def remove_comment(self, broadcast_id: str, comment_id: str) -> bool:
        """Remove from history and from every viewer's screen on every node."""
        known = await self.bus.remove_comment(broadcast_id, comment_id)
        if self.recorder is not None:
            await self.recorder.comment_removed(broadcast_id, comment_id)
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

    async def list_held(self, broadcast_id: str) -> list[dict[str, Any]]:
        """Held comments: comment fields plus ``held_id`` (and ``reason``, ``filter``, ``language``)."""
        return [{**held.comment, "held_id": held.id} for held in await self.bus.list_held(broadcast_id)]

    async def history(self, broadcast_id: str) -> list[dict[str, Any]]:
        return await self.bus.history(broadcast_id)

    async def forget_comments(self, broadcast_id: str, comment_ids: list[str]) -> None:
        await self.bus.forget_comments(broadcast_id, comment_ids)

    async def pinned(self, broadcast_id: str) -> dict[str, Any] | None:
        return await self.bus.pinned(broadcast_id)

    async def set_pinned(self, broadcast_id: str, comment: dict[str, Any] | None) -> None:
        shown = comment_fields(comment) if comment is not None else None
        if shown is not None:
            shown.pop("type", None)
        await self.bus.set_pinned(broadcast_id, shown)
        await self.bus.publish(channel_of(broadcast_id), proto.event("pinned", comment=shown))

    async def ban(self, record: BanRecord, address: bool = False) -> BanRecord:
        """Ban (``until`` None) or time out a viewer on every node; ``address``: its network address
        too (the record as kept names the key; ``bans.AddressUnknown`` when none is known)."""
        return await self.chat_bans.ban(record, address)

    async def unban(self, broadcast_id: str, viewer_id: str) -> bool:
        return await self.bus.unban(broadcast_id, viewer_id)

    async def bans(self, broadcast_id: str | None = None) -> list[BanRecord]:
        return await self.bus.bans(broadcast_id)

    async def is_banned(self, broadcast_id: str, viewer_id: str) -> bool:
        return await self.bus.is_banned(broadcast_id, viewer_id)

    async def access_changed(self, broadcast_id: str) -> None:
        """Every node's playback gate reloads the broadcast's bans and viewer-token epoch."""
        await announce(self.bus, broadcast_id)
