"""Slow mode: one comment per N seconds per viewer (bounded per-viewer state)."""

from __future__ import annotations

from ..bounded import TTLCache
from ..context import CommentContext
from ..settings import ModerationSettings
from ..verdict import Action, FilterResult

__all__ = ["SlowModeFilter"]


class SlowModeFilter:
    name = "slow_mode"

    def __init__(self, max_viewers: int = 100_000) -> None:
        self._last: TTLCache[tuple[str, str], float] = TTLCache(max_viewers)

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None:
        n = settings.slow_mode_seconds
        if n <= 0:
            return None
        assert ctx.now is not None
        key = (ctx.broadcast_id, ctx.viewer_id)
        last = self._last.get(key, ctx.now)
        if last is not None and ctx.now - last < n:
            # a refused comment does not restart the viewer's wait
            return FilterResult(Action.REJECT, "slow_mode")
        self._last.set(key, ctx.now, ctx.now + n)
        return None
