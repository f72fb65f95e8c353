"""Hate model: holds comments the multilingual model scores as hateful, at the language's strictness.

Runs the model of `moderation.hatemodel` (trained on HateCheck and
Multilingual HateCheck, eleven languages; its template-held-out figures are
in docs/benchmarks.md).  The comment is read as its most likely language
(that language's script folding); the level is the strictest among the
comment's candidate languages, so a code-switched or short comment is judged
as strictly as any language it may be in, and the threshold is that level's
moved by the language's own (`hold_thresholds`: the model file holds, per
language, the probability that stops 0.80 of hateful cases on templates the
model did not see).

Reported speech: words inside quotation marks ("…", “…”, „…“, «…», 「…」)
are what someone else said.  When the comment says something of its own
around a quote (two words or more outside it), the score is the larger of
the model's score of those own words (the quote replaced by a placeholder)
and `QUOTE_WEIGHT` times the score of the whole (against the level's bar before the
language's own threshold moves it): counter-speech quoting hate
("Writing \"X are vermin\" is disgusting") publishes, while a comment that
is only a quote, or whose own words are hateful, is still held.  Known gap:
a quote *endorsed* in words the model does not read as hostile ("exactly as
he says: \"…\"") counts as reported speech too (only very strong quoted
hate, scoring ≥ hold/0.7, is held).
The English rules follow the same principle.

Too short to judge: a comment of one word, or of two words in a language
not identified with confidence (Chinese: two characters count as a word), is
not scored.  The model reads a bare group name ("gay", "Tyson Gay") as the
start of a slur template; listed slurs and profanity in short comments are
still censored by the word lists.

English comments are the hand-written rules' job (`filters/harassment`,
better on English than this model on held-out templates): the model skips a
comment whose most likely language is English (a code-switched comment
whose first language is another one still gets both).  The finding names
the language and carries the score ("hate_model", reason "hate_speech").
"""

from __future__ import annotations

import re

from ..context import CommentContext
from ..hatemodel.model import HateModel
from ..settings import ModerationSettings, Strictness
from ..verdict import Action, FilterResult

__all__ = ["HateModelFilter", "MODEL_THRESHOLDS", "hold_thresholds"]

# strictness -> (hold at or above, reject at or above) model probability, for a language held at 0.5 at
# "medium"; the model file holds each language's own "medium" threshold (chosen by the training script for
# 0.80 of unseen hateful cases) and the hold thresholds of every level move with it
MODEL_THRESHOLDS: dict[Strictness, tuple[float, float]] = {
    Strictness.LOW: (0.7, 0.99),
    Strictness.MEDIUM: (0.5, 0.97),
    Strictness.HIGH: (0.4, 0.95),
}
MIN_WORDS = 3           # fewer: scored only when the language is certain (and never one word)
QUOTE_WEIGHT = 0.7   # a comment that quotes and comments: the whole counts at this share, its own words in full
_ORDER = (Strictness.OFF, Strictness.LOW, Strictness.MEDIUM, Strictness.HIGH)
_QUOTED = re.compile(r'"[^"]+"|“[^“”]+”|„[^„“”]+[“”]|«[^«»]+»|「[^「」]+」|『[^『』]+』|”[^”]+”')
_OWN_WORDS = re.compile(r"\w+")


def _words(text: str) -> int:
    n = 0
    for w in _OWN_WORDS.findall(text):
        cjk = sum(1 for c in w if "\u3400" <= c <= "\u9fff")
        n += max(1, cjk // 2) if cjk else 1
    return n


def own_words(text: str) -> str | None:
    """The comment with quoted passages replaced by a placeholder, if it quotes and adds two words or more."""
    if not _QUOTED.search(text):
        return None
    outside = _QUOTED.sub(" « » ", text)
    words = _OWN_WORDS.findall(outside)
    spaced = sum(1 for w in words if not any("\u3400" <= c <= "\u9fff" for c in w))
    cjk = sum(1 for c in outside if "\u3400" <= c <= "\u9fff")
    return outside if spaced >= 2 or cjk >= 4 else None


def hold_thresholds(model: HateModel, level: Strictness, lang: str | None) -> tuple[float, float]:
    """(hold at, reject at) for `lang` at `level`: the level's pair moved by the language's own threshold."""
    hold_at, reject_at = MODEL_THRESHOLDS[level]
    shifted = hold_at + model.hold_at(lang) - MODEL_THRESHOLDS[Strictness.MEDIUM][0]
    return min(max(shifted, 0.05), reject_at - 0.01), reject_at


class HateModelFilter:
    name = "hate_model"

    def __init__(self, model: HateModel | None = None) -> None:
        self.model = model or HateModel.load()  # loaded up front, not on the first comment

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None:
        guess = ctx.language
        langs = guess.languages if guess is not None else ()
        if langs and langs[0] == "en":
            return None
        levels = [settings.strictness_for(x) for x in langs] or [settings.strictness]
        level = max(levels, key=_ORDER.index)
        if level is Strictness.OFF:
            return None
        lang = langs[0] if langs else None
        words = _words(ctx.normalized.text)
        if words < MIN_WORDS and (words < 2 or guess is None or not guess.confident):
            return None
        hold_at, reject_at = hold_thresholds(self.model, level, lang)
        p = self.model.score_normalized(ctx.normalized.text, lang)
        own = own_words(ctx.text)
        if own is not None:
            # the whole counts at QUOTE_WEIGHT of the level's own bar, whatever the language's threshold:
            # quoted hate alone holds from MODEL_THRESHOLDS[level][0] / QUOTE_WEIGHT in every language
            p = max(self.model.score(own, lang), p * QUOTE_WEIGHT * hold_at / MODEL_THRESHOLDS[level][0])
        if p >= reject_at:
            return FilterResult(Action.REJECT, "hate_speech", score=p, language=lang)
        if p >= hold_at:
            return FilterResult(Action.HOLD, "hate_speech", score=p, language=lang)
        return None
