"""The interface every filter implements."""

from __future__ import annotations

from typing import Protocol

from ..context import CommentContext
from ..settings import ModerationSettings
from ..verdict import FilterResult

__all__ = ["Filter"]


class Filter(Protocol):
    """A filter looks at one comment and returns a finding or None.

    `ctx.now` is always set when the pipeline calls `check`.  Filters with
    per-viewer state keep it bounded.
    """

    name: str

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None: ...
