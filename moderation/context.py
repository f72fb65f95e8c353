"""CommentContext: everything a filter may look at for one comment."""

from __future__ import annotations

from dataclasses import dataclass

from .languages.identify import LanguageGuess
from .normalize import Normalized, normalize

__all__ = ["CommentContext"]


@dataclass(frozen=True, slots=True)
class CommentContext:
    """One incoming comment.  `normalized.text` is what filters match;
    `text` is the original, kept for display.  `now` is on the pipeline's clock
    (None: the pipeline fills it in).  `language` is the pipeline's guess of the
    comment's language(s), made with the broadcast's expected languages (None
    until the pipeline sets it)."""

    broadcast_id: str
    viewer_id: str
    text: str
    normalized: Normalized
    now: float | None = None
    language: LanguageGuess | None = None

    @classmethod
    def create(cls, broadcast_id: str, viewer_id: str, text: str, now: float | None = None) -> "CommentContext":
        return cls(broadcast_id, viewer_id, text, normalize(text), now)
