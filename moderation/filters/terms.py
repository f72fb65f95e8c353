"""Per-broadcast blocked terms (with * wildcards) and allowed terms.

Terms are normalised like comments, so a blocked "spoiler" also catches
"sp0iler"; `*` matches any run of letters/digits inside a word.  Allowed
terms are the host's fix for false positives: spans they cover are exempt
from the blocked-terms and profanity filters.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..context import CommentContext
from ..normalize import normalize
from ..settings import ModerationSettings
from ..verdict import Action, FilterResult

__all__ = ["TermsFilter", "compile_terms", "allowed_spans"]

_B = r"(?<![^\W_])"  # not preceded by a letter/digit
_E = r"(?![^\W_])"   # not followed by a letter/digit


def _term_pattern(term: str) -> str | None:
    parts = term.split("*")
    norm = [re.escape(normalize(p.strip() if len(parts) == 1 else p).text) for p in parts]
    body = r"[^\W_]*".join(norm)
    if not body.replace(r"[^\W_]*", ""):
        return None  # a bare "*" would match everything: ignored
    return _B + body + _E


@lru_cache(maxsize=1024)
def compile_terms(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for a tuple of terms (cached: settings change rarely)."""
    pats = [p for p in (_term_pattern(t) for t in terms) if p]
    if not pats:
        return None
    return re.compile("|".join(f"(?:{p})" for p in pats))


def allowed_spans(ctx: CommentContext, settings: ModerationSettings) -> list[tuple[int, int]]:
    """Spans of the *normalised* text covered by allowed terms."""
    rx = compile_terms(settings.allowed_terms)
    if rx is None:
        return []
    return [m.span() for m in rx.finditer(ctx.normalized.text)]


def inside(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(s <= span[0] and span[1] <= e for s, e in spans)


class TermsFilter:
    name = "terms"

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None:
        rx = compile_terms(settings.blocked_terms)
        if rx is None:
            return None
        allowed = allowed_spans(ctx, settings)
        for m in rx.finditer(ctx.normalized.text):
            if not inside(m.span(), allowed):
                return FilterResult(Action.REJECT, "blocked_term")
        return None
