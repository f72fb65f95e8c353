"""The moderation step every incoming comment passes before it is published.

``CommentModerator`` is the interface the relay calls; ``NoModeration`` is the
default until the moderation package is plugged in
(``broadcaster/moderation_relay.py`` ``PipelineModerator``).  The outcome's
action is the moderation package's own :class:`moderation.verdict.Action`:
one vocabulary from the filters to the chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from moderation.verdict import Action


@dataclass(frozen=True)
class ModerationOutcome:
    action: Action
    #: the text to show (publish_censored); None: the original
    text: str | None = None
    #: reason code shown to the author on hold/reject
    reason: str = ""
    #: which filter decided
    filter: str = ""
    #: the comment's language (code), as moderation identified it; "" if unknown
    language: str = ""


class CommentModerator(Protocol):
    async def moderate(self, broadcast_id: str, viewer_id: str, text: str) -> ModerationOutcome: ...


class NoModeration:
    """Publishes everything as written."""

    async def moderate(self, broadcast_id: str, viewer_id: str, text: str) -> ModerationOutcome:
        return ModerationOutcome(Action.PUBLISH)


PUBLISH = ModerationOutcome(Action.PUBLISH)


__all__ = ["PUBLISH", "Action", "CommentModerator", "ModerationOutcome", "NoModeration"]
