"""Verdict types: what the pipeline decides about one comment, and what a filter reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["Action", "Verdict", "FilterResult"]


class Action(str, enum.Enum):
    """What happens to a comment.  Ordered from mildest to strictest."""

    PUBLISH = "publish"
    PUBLISH_CENSORED = "publish_censored"
    HOLD = "hold"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The pipeline's decision.

    `text` is the comment as it would be shown: censored for
    publish_censored, the original otherwise (hold keeps it for review).
    `filter` names the filter that decided (None for a plain publish) and
    `reason` is a stable reason code; `score` the harassment score behind it,
    if any; `language` the comment's (most likely) language code, if known.
    """

    action: Action
    text: str
    filter: str | None = None
    reason: str | None = None
    score: float | None = None
    language: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON shape used by the CLI and the relay."""
        return {"verdict": self.action.value, "text": self.text, "filter": self.filter, "reason": self.reason,
                "language": self.language, "score": None if self.score is None else round(self.score, 4)}


@dataclass(frozen=True, slots=True)
class FilterResult:
    """One filter's finding.

    A filter returns None when it has nothing to say.  `action` HOLD/REJECT
    stops the pipeline; PUBLISH_CENSORED contributes `censor_spans` (slices of
    the original text to replace with ****) and lets later filters run.
    """

    action: Action
    reason: str
    censor_spans: tuple[tuple[int, int], ...] = field(default=())
    score: float | None = None
    language: str | None = None      # the language the finding was made in, if not the comment's first
