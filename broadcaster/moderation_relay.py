"""The chat side of host moderation: what the relay calls.

``PipelineModerator`` is the relay's moderation step (the pipeline with each
broadcast's stored settings); ``GrantNames`` gives the chat the moderators'
names to reserve.  ``broadcaster/moderation_api.py`` wires them into the node
(the moderation actions reach the chat through ``broadcaster.chat.host.HostActions``).
"""

from __future__ import annotations


from broadcaster.chat.moderation import ModerationOutcome
from moderation.screening import CommentScreen
from moderation.store import ModerationStore
from moderation.verdict import Action


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
