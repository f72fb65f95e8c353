"""Features of the hate model, shared by training and inference (one definition, no drift).

A comment is normalised (`moderation.normalize`: case, accents, look-alikes,
leetspeak, split letters) and folded per script (`moderation.languages.fold`).
Mentions of protected groups are then replaced by one placeholder and slurs
by another (`Masker`), so the model learns what is *said about* a group, not
which group is named: "I love Muslims" and "I hate Muslims" differ only in
the context words.  Features:

- word unigrams and bigrams of the masked text;
- character 2- to 5-grams of the masked text (misspellings, inflection,
  German compounds, Chinese without spaces);
- ``HASGRP`` when a group or slur is named, and every word feature again
  prefixed with ``G`` in that case (a linear model then learns "hostile word
  *and* a group" rather than either alone);
- with a `Lexicon` (model files from version 2): the polarity of the words
  from a sentiment lexicon and negation (`moderation.hatemodel.lexicon`).
"""

from __future__ import annotations

import re

from ..languages.script import fold
from ..normalize import normalize
from .lexicon import Lexicon

__all__ = ["Masker", "features", "prepare", "prepare_normalized", "GROUP", "SLUR"]

GROUP = "qgrpq"
SLUR = "qslurq"
_WORDS = re.compile(r"\w+")


def prepare(text: str, lang: str | None = None) -> str:
    """Normalised, folded text with single spaces between words."""
    return prepare_normalized(normalize(text).text, lang)


def prepare_normalized(normalized: str, lang: str | None = None) -> str:
    """`prepare` of text already through `moderation.normalize` (the pipeline has that at hand)."""
    return " ".join(_WORDS.findall(fold(normalized, lang)))


class Masker:
    """Replaces identity expressions and slurs (normalised, folded) by placeholders.

    Expressions of up to three words match whole words, longest first (a
    look-up per word position, not a regex: about 20 µs a comment); those in
    scripts written without spaces (Chinese) match anywhere inside a word.
    """

    def __init__(self, identities: frozenset[str] | set[str], slurs: frozenset[str] | set[str]) -> None:
        self.identities = frozenset(identities)
        self.slurs = frozenset(slurs) - self.identities
        self._words: dict[tuple[str, ...], str] = {}
        self._spaceless: list[tuple[str, str]] = []
        for expr in sorted(self.identities | self.slurs, key=lambda e: (-len(e), e)):
            tag = SLUR if expr in self.slurs else GROUP
            if _spaceless(expr):
                self._spaceless.append((expr, tag))
            else:
                self._words[tuple(expr.split())] = tag
        self._longest = max((len(k) for k in self._words), default=0)

    def mask(self, text: str) -> tuple[str, bool]:
        """(masked text, whether a group or slur was named); `text` is prepared (single spaces)."""
        words = text.split()
        out: list[str] = []
        hit = False
        i, n = 0, len(words)
        while i < n:
            for k in range(min(self._longest, n - i), 0, -1):
                tag = self._words.get(tuple(words[i:i + k]))
                if tag is not None:
                    out.append(tag)
                    hit = True
                    i += k
                    break
            else:
                w = words[i]
                if self._spaceless and _spaceless(w):
                    for expr, tag in self._spaceless:
                        if expr in w:
                            w = w.replace(expr, f" {tag} ")
                            hit = True
                out.append(w)
                i += 1
        return " ".join(" ".join(out).split()), hit


def _spaceless(expr: str) -> bool:
    return any("\u3400" <= c <= "\u9fff" for c in expr)


def features(prepared: str, masker: Masker, lexicon: Lexicon | None = None, lang: str | None = None) -> set[str]:
    """The feature set of one prepared comment read as `lang` (see the module docstring)."""
    text, named = masker.mask(prepared)
    ws = text.split()
    word = ["w:" + w for w in ws]
    word += ["b:" + a + "_" + b for a, b in zip(ws, ws[1:])]
    out = set(word)
    s = " " + text + " "
    n = len(s)
    for k in range(2, 6):
        for i in range(n - k + 1):
            out.add(s[i:i + k])
    if named:
        out.add("HASGRP")
        out.update("G" + f for f in word)
    if lexicon is not None:
        out |= lexicon.features(ws, lang, named, (GROUP, SLUR))
    return out
