"""Banned and timed-out viewers: rejected before any other filter runs."""

from __future__ import annotations

from ..context import CommentContext
from ..settings import ModerationSettings
from ..state import ViewerState
from ..verdict import Action, FilterResult

__all__ = ["AccessFilter"]


class AccessFilter:
    name = "access"

    def __init__(self, state: ViewerState) -> None:
        self.state = state

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None:
        assert ctx.now is not None  # set by the pipeline, not network input
        if self.state.is_banned(ctx.broadcast_id, ctx.viewer_id):
            return FilterResult(Action.REJECT, "banned")
        if self.state.timed_out_until(ctx.broadcast_id, ctx.viewer_id, ctx.now) is not None:
            return FilterResult(Action.REJECT, "timed_out")
        return None
