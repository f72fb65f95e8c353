"""The moderation pipeline: orders the filters and turns their findings into one Verdict.

Order: slow mode → spam → blocked terms →
harassment (English rules) → hate model (every language) → profanity
(English list) → word lists (the comment's languages).  Before the filters
run, the comment's language is identified once (`moderation.languages`,
with the broadcast's expected languages) and handed to them in the context;
every verdict names it.  The first HOLD or REJECT decides; censoring is
applied to a comment that otherwise publishes.  A filter that
raises fails closed: the comment is held for review with reason
"filter_error" (never published, never lost) and the error is logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable, Sequence

from .context import CommentContext
from .filters.base import Filter
from .filters.harassment import HarassmentFilter
from .filters.hate_model import HateModelFilter
from .filters.language_lists import LanguageListFilter
from .filters.profanity import ProfanityFilter, censor
from .filters.slowmode import SlowModeFilter
from .filters.spam import SpamFilter
from .filters.terms import TermsFilter
from .settings import ModerationSettings
from .languages.identify import identify, warm_up
from .verdict import Action, Verdict

__all__ = ["ModerationPipeline", "SettingsProvider", "default_filters"]

log = logging.getLogger("onair.moderation")

SettingsProvider = Callable[[str], ModerationSettings]
_DEFAULT_SETTINGS = ModerationSettings()


def default_filters() -> list[Filter]:
    """The standard filters in pipeline order.

    Bans and timeouts are not a filter: the chat state checks them at the join and
    in the same step as each post (``broadcaster/chat/bans.py``).
    """
    return [SlowModeFilter(), SpamFilter(), TermsFilter(), HarassmentFilter(), HateModelFilter(),
            ProfanityFilter(), LanguageListFilter()]


class ModerationPipeline:
    """Synchronous verdicts for comments; one instance per node.

    `settings_provider(broadcast_id)` returns that broadcast's settings
    (default: `ModerationSettings()` for every broadcast).  `clock` supplies `now` for comments that carry none.
    """

    def __init__(
        self,
        settings_provider: SettingsProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
        filters: Sequence[Filter] | None = None,
    ) -> None:
        self.settings_provider: SettingsProvider = settings_provider or (lambda _bid: _DEFAULT_SETTINGS)
        self.clock = clock
        self.filters: list[Filter] = list(filters) if filters is not None else default_filters()
        self.errors = 0  # filter failures (each one held a comment)
        warm_up()  # the language model loads now (once per process), not on the first comment

    def moderate(self, ctx: CommentContext) -> Verdict:
        """Decide about one comment."""
        try:
            settings = self.settings_provider(ctx.broadcast_id)
        except Exception:
            log.exception("moderation settings unavailable for broadcast %s: comment held", ctx.broadcast_id)
            self.errors += 1
            return Verdict(Action.HOLD, ctx.text, "settings", "filter_error")
        try:
            guess = ctx.language or identify(ctx.text, settings.languages)
        except Exception:
            log.exception("language identification failed: comment held")
            self.errors += 1
            return Verdict(Action.HOLD, ctx.text, "language", "filter_error")
        ctx = replace(ctx, now=self.clock() if ctx.now is None else ctx.now, language=guess)
        lang = guess.primary
        spans: list[tuple[int, int]] = []
        censored_by: str | None = None
        censor_reason: str | None = None
        for f in self.filters:
            try:
                res = f.check(ctx, settings)
            except Exception:
                # fail closed: a broken filter must not let a comment through
                log.exception("moderation filter %s failed: comment held", getattr(f, "name", f))
                self.errors += 1
                return Verdict(Action.HOLD, ctx.text, getattr(f, "name", None), "filter_error", language=lang)
            if res is None:
                continue
            if res.action in (Action.HOLD, Action.REJECT):
                return Verdict(res.action, ctx.text, f.name, res.reason, res.score, res.language or lang)
            if res.action is Action.PUBLISH_CENSORED and res.censor_spans:
                spans.extend(res.censor_spans)
                censored_by = censored_by or f.name
                censor_reason = censor_reason or res.reason
        if spans:
            return Verdict(Action.PUBLISH_CENSORED, censor(ctx.text, spans), censored_by, censor_reason, language=lang)
        return Verdict(Action.PUBLISH, ctx.text, language=lang)

    def moderate_text(self, broadcast_id: str, viewer_id: str, text: str, now: float | None = None) -> Verdict:
        """Convenience: normalise and moderate raw text."""
        return self.moderate(CommentContext.create(broadcast_id, viewer_id, text, now))

    async def moderate_async(self, ctx: CommentContext) -> Verdict:
        """Same as `moderate`; every filter is fast enough to run inline on the loop."""
        return self.moderate(ctx)
