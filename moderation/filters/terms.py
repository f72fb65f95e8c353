"""Per-broadcast blocked terms (with * wildcards) and allowed terms.

Terms are normalised like comments, so a blocked "spoiler" also catches
"sp0iler"; `*` matches any run of letters/digits inside a word.  Allowed
terms are the host's fix for false positives: characters they cover are
exempt from the blocked-terms and profanity filters.

Terms come from moderators, so they are matched by :mod:`moderation.wildcard`
in time linear in the comment (no backtracking regex), whatever the terms.
"""

from __future__ import annotations

from ..context import CommentContext
from ..settings import ModerationSettings
from ..verdict import Action, FilterResult
from ..wildcard import compile_terms, covered_spans

__all__ = ["TermsFilter", "allowed_spans", "inside", "prepare_terms"]


def prepare_terms(settings: ModerationSettings) -> None:
    """Build (and cache) the automata of the settings' terms: up to ~0.2 s for 1000 long terms, so
    callers on an event loop run it in a thread when settings change."""
    compile_terms(settings.blocked_terms)
    compile_terms(settings.allowed_terms)


def allowed_spans(ctx: CommentContext, settings: ModerationSettings) -> list[tuple[int, int]]:
    """Runs of the *normalised* text covered by allowed terms."""
    allowed = compile_terms(settings.allowed_terms)
    if allowed is None:
        return []
    text = ctx.normalized.text
    return covered_spans(allowed.coverage(text), len(text))


def inside(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(s <= span[0] and span[1] <= e for s, e in spans)


class TermsFilter:
    name = "terms"

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None:
        blocked = compile_terms(settings.blocked_terms)
        text = ctx.normalized.text
        if blocked is None or not blocked.found(text):
            return None
        allowed = compile_terms(settings.allowed_terms)
        # a blocked occurrence is exempt only if allowed terms cover every one of its characters
        if allowed is None or blocked.coverage(text) & ~allowed.coverage(text):
            return FilterResult(Action.REJECT, "blocked_term")
        return None
