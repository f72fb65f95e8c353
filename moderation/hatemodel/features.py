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
  *and* a group" rather than either alone).
"""

from __future__ import annotations

import re

from ..languages.script import fold
from ..normalize import normalize

__all__ = ["Masker", "features", "prepare", "GROUP", "SLUR"]

GROUP = "qgrpq"
SLUR = "qslurq"
_WORDS = re.compile(r"\w+")


def prepare(text: str, lang: str | None = None) -> str:
    """Normalised, folded text with single spaces between words."""
    return " ".join(_WORDS.findall(fold(normalize(text).text, lang)))


class Masker:
    """Replaces identity expressions and slurs (normalised, folded) by placeholders.

    Longest expressions first; whole words only, except in scripts written
    without spaces (Chinese), where an expression matches anywhere.
    """

    def __init__(self, identities: frozenset[str] | set[str], slurs: frozenset[str] | set[str]) -> None:
        self.identities = frozenset(identities)
        self.slurs = frozenset(slurs) - self.identities
        alts = sorted(self.identities | self.slurs, key=lambda s: (-len(s), s))
        pats = [re.escape(a) if _spaceless(a) else r"(?<!\w)" + re.escape(a) + r"(?!\w)" for a in alts]
        self._rx = re.compile("|".join(pats)) if pats else None

    def mask(self, text: str) -> tuple[str, bool]:
        """(masked text, whether a group or slur was named)."""
        if self._rx is None:
            return text, False
        hit = False

        def rep(m: re.Match[str]) -> str:
            nonlocal hit
            hit = True
            return f" {SLUR} " if m.group(0) in self.slurs else f" {GROUP} "

        out = self._rx.sub(rep, text)
        return (" ".join(out.split()) if hit else out), hit


def _spaceless(expr: str) -> bool:
    return any("\u3400" <= c <= "\u9fff" for c in expr)


def features(prepared: str, masker: Masker) -> set[str]:
    """The feature set of one prepared comment (see the module docstring)."""
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
    return out
