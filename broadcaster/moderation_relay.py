"""The chat side of host moderation: what the relay calls and what the moderation actions call back.

``PipelineModerator`` is the relay's moderation step (the pipeline with each
broadcast's stored settings); ``RelayControl`` is ``moderation.actions.ChatControl``
on top of the relay; ``GrantNames`` gives the chat the moderators' names to
reserve.  ``broadcaster/moderation_api.py`` wires them into the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broadcaster.chat import ChatRelay
from broadcaster.chat.moderation import ModerationOutcome
from broadcaster.playback.access import announce
from moderation.screening import CommentScreen
from moderation.store import ModerationStore
from moderation.verdict import Action


class RelayControl:
    """``moderation.actions.ChatControl`` on top of this node's chat relay and its bus."""

    def __init__(self, relay: Callable[[], ChatRelay]) -> None:
        self._relay = relay

    async def history(self, broadcast_id: str) -> list[dict[str, Any]]:
        return await self._relay().bus.history(broadcast_id)

    async def remove_comment(self, broadcast_id: str, comment_id: str) -> bool:
        return await self._relay().remove_comment(broadcast_id, comment_id)

    async def forget_comments(self, broadcast_id: str, comment_ids: list[str]) -> None:
        await self._relay().bus.forget_comments(broadcast_id, comment_ids)

    async def list_held(self, broadcast_id: str) -> list[dict[str, Any]]:
        return [{**h.comment, "held_id": h.id} for h in await self._relay().list_held(broadcast_id)]

    async def publish_held(self, broadcast_id: str, held_id: str) -> dict[str, Any] | None:
        return await self._relay().publish_held(broadcast_id, held_id)

    async def reject_held(self, broadcast_id: str, held_id: str) -> bool:
        return await self._relay().reject_held(broadcast_id, held_id)

    async def pinned(self, broadcast_id: str) -> dict[str, Any] | None:
        return await self._relay().bus.pinned(broadcast_id)

    async def set_pinned(self, broadcast_id: str, comment: dict[str, Any] | None) -> None:
        await self._relay().set_pinned(broadcast_id, comment)

    async def ban(self, broadcast_id: str, viewer_id: str, seconds: float | None = None,
                  address: bool = False) -> str | None:
        return await self._relay().ban(broadcast_id, viewer_id, seconds, address)

    async def unban(self, broadcast_id: str, viewer_id: str) -> None:
        await self._relay().unban(broadcast_id, viewer_id)

    async def access_changed(self, broadcast_id: str) -> None:
        await announce(self._relay().bus, broadcast_id)


class GrantNames:
    """The chat's ``ModeratorNames``: the labels of a broadcast's moderators."""

    def __init__(self, store: ModerationStore) -> None:
        self.store = store

    async def moderator_names(self, broadcast_id: str) -> list[str]:
        return [grant.label for grant in await self.store.list_grants(broadcast_id)]


class PipelineModerator:
    """The relay's ``CommentModerator``: the moderation pipeline with each broadcast's stored settings.

    Verdicts other than publish go to the audit log; every comment goes to the
    viewer's archive (export/erasure): a plain publish's archive record is
    queued and written in the store's next batch, off the comment's way to the
    screen; any other verdict is archived and audited before the author hears
    back.  Held comments are queued by the relay in the shared, persistent held
    queue (stored before the "held" answer).  Until the store is open (startup)
    and if the store fails, the relay's fail-closed path holds the comment.
    """

    def __init__(self) -> None:
        self.screen: CommentScreen | None = None

    async def moderate(self, broadcast_id: str, viewer_id: str, text: str) -> ModerationOutcome:
        if self.screen is None:
            raise RuntimeError("moderation store is not open yet")
        verdict = await self.screen.screen(broadcast_id, viewer_id, text)
        return ModerationOutcome(verdict.action,
                                 text=verdict.text if verdict.action is Action.PUBLISH_CENSORED else None,
                                 reason=verdict.reason or "", filter=verdict.filter or "",
                                 language=verdict.language or "")
