"""Per-language word lists: censors listed profanity and slurs in each of the comment's languages.

The lists are LDNOOBW's (`moderation.languages.wordlists`, CC BY 4.0), for
the ten languages besides English (English is better-profanity's list in
`filters/profanity`).  Applies to the comment's candidate languages only, so
a Dutch list never censors an English word that happens to be spelled alike.
Off with the broadcast's `profanity` setting; allowed terms are exempt.
"""

from __future__ import annotations

from ..context import CommentContext
from ..languages.wordlists import LANGUAGES, compile_list, find_listed
from ..settings import ModerationSettings
from ..verdict import Action, FilterResult
from .terms import allowed_spans, inside

__all__ = ["LanguageListFilter"]


class LanguageListFilter:
    name = "wordlist"

    def __init__(self) -> None:
        for lang in LANGUAGES:
            compile_list(lang)  # compiled up front, not on the first comment

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None:
        if not settings.profanity or ctx.language is None:
            return None
        spans: list[tuple[int, int]] = []
        first: str | None = None
        for lang in ctx.language.languages:
            found = find_listed(ctx.normalized, lang)
            if found and first is None:
                first = lang
            spans.extend(found)
        if not spans:
            return None
        allowed = [ctx.normalized.original_span(a, b) for a, b in allowed_spans(ctx, settings)]
        spans = [s for s in spans if not inside(s, allowed)]
        if not spans:
            return None
        return FilterResult(Action.PUBLISH_CENSORED, "profanity", censor_spans=tuple(spans), language=first)
