"""Text normalisation run before every moderation filter, against evasion.

`normalize(text)` returns a `Normalized`: the lower-case, folded form filters
match against, plus, for every character of that form, the span of the
original text it came from, so a filter can censor the *original* text (what
viewers see) from a match found in the normalised one.

Steps, per character then per word:
- NFKC (fullwidth ``Ｆ``, mathematical alphanumerics ``𝐔``, ligatures),
  combining marks dropped (``fučk`` → ``fuck``), zero-width characters dropped;
- Cyrillic/Greek look-alikes mapped to Latin, but only inside words that
  already contain Latin letters or consist only of look-alikes (so Russian or
  Greek prose is not turned into Latin noise);
- leetspeak inside words that contain letters (``sh1t``, ``a$$``, ``h4te``);
  pure numbers stay numbers;
- separators inside words: runs of 1–2 letter fragments split by ``. - _ * ``
  or spaces, with at least one single letter, are joined (``f.u.c.k``,
  ``f u c k``, ``FU c.k``); the result only matters if a filter's lexicon
  matches the *whole* joined run, so ``a I o`` → ``aio`` is harmless;
- runs of 3+ identical letters shortened to two (``fuuuuck`` → ``fuuck``):
  two keeps legit double letters (``ass``, ``hello``) and filters accept
  ``x+`` repetition, so both forms stay matchable.

Non-Latin scripts (CJK, Arabic) and emoji pass through (lower-cased where the
script has case); the original text is never modified here.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["Normalized", "normalize", "squeeze"]

# Characters that render as nothing; attackers insert them inside words.
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u200e\u200f\u2061\u2062\u2063\u2064")

# Cyrillic and Greek letters that look like Latin ones (lower case; input is
# lower-cased first).  Deliberately small: only shapes people actually use.
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "i",
    "ї": "i", "ј": "j", "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p",
    "ԛ": "q", "г": "r", "ѕ": "s", "т": "t", "ц": "u", "у": "y", "ѡ": "w", "х": "x",
    "ү": "y", "ь": "b", "п": "n", "и": "u", "з": "3", "ч": "4",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "μ": "u", "ϲ": "c",
    "ς": "c", "σ": "o", "δ": "d", "λ": "a",
    # other common look-alikes
    "ı": "i", "ɑ": "a", "ℓ": "l", "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d",
    "ł": "l", "ħ": "h",
}

# Leetspeak, applied only inside words that contain at least one letter.
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
         "@": "a", "$": "s", "!": "i", "+": "t", "|": "l"}
# Symbols that are only leet when *inside* a word (letters both sides);
# otherwise "hello!" would become "helloi".
_INNER_ONLY = frozenset("!|+")
_SEPARATORS = frozenset(".-_* ~")
# Two-letter English words: a space next to one of these is a real word gap,
# so "I am a bot" is never glued, while "FU c.k" is.
_SHORT_WORDS = frozenset(
    "am an as at be by do go he hi if in is it me my no of oh ok on or ox so to "
    "up us we ya ye yo ur lo ma pa mr ms dr tv pc id ad ah eh uh um hm".split()
)


@dataclass(frozen=True, slots=True)
class Normalized:
    """The normalised form of `original`.

    `spans[i]` is the (start, end) slice of `original` that produced
    `text[i]`; `text` is what filters match against.
    """

    original: str
    text: str
    spans: tuple[tuple[int, int], ...]
    # indices of `text` whose letter stands for a shortened run of 3+ ("fuuuuck")
    stretched: frozenset[int] = frozenset()

    def collapsed(self) -> tuple[str, tuple[tuple[int, int], ...]]:
        """`text` with each stretched run down to one letter, and its spans.

        Matching both `text` ("assss" → "ass") and this ("fuuuuck" → "fuck")
        keeps legit double letters and catches stretching, without letting
        an ordinary double ("rapping") pass for a single.
        """
        if not self.stretched:
            return self.text, self.spans
        keep = [i for i in range(len(self.text)) if i not in self.stretched]
        text = "".join(self.text[i] for i in keep)
        # the kept letter of the run takes over the run's whole span
        spans = []
        for i in keep:
            s, e = self.spans[i]
            if i + 1 in self.stretched:
                e = self.spans[i + 1][1]
            spans.append((s, e))
        return text, tuple(spans)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) slice of `text` back to a slice of `original`."""
        if start >= end:
            raise ValueError("empty span")
        return self.spans[start][0], self.spans[end - 1][1]


def _fold_char(ch: str) -> str:
    """NFKC, lower-case, drop combining marks and zero-width characters."""
    if ch in _ZERO_WIDTH:
        return ""
    out = []
    for c in unicodedata.normalize("NFKC", ch).lower():
        for d in unicodedata.normalize("NFD", c):
            if unicodedata.combining(d):
                continue
            out.append(d)
    return unicodedata.normalize("NFC", "".join(out))


def _is_latin_letter(c: str) -> bool:
    return "a" <= c <= "z"


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c in _LEET or c in _CONFUSABLES


def squeeze(word: str) -> str:
    """Collapse every run of a repeated character to one ("fuuck" → "fuck")."""
    out: list[str] = []
    for c in word:
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def normalize(text: str) -> Normalized:
    """Normalise `text` for filtering; see the module docstring."""
    chars: list[str] = []
    spans: list[tuple[int, int]] = []
    # 1. per character folding
    for i, ch in enumerate(text):
        folded = _fold_char(ch)
        for f in folded:
            chars.append(f)
            spans.append((i, i + 1))

    # 2. per word: confusables and leet (words = runs of word characters)
    n = len(chars)
    i = 0
    while i < n:
        if not _is_word_char(chars[i]):
            i += 1
            continue
        j = i
        while j < n and _is_word_char(chars[j]):
            j += 1
        word = chars[i:j]
        has_latin = any(_is_latin_letter(c) for c in word)
        if has_latin or all(c in _CONFUSABLES or c in _LEET for c in word):
            word = [_CONFUSABLES.get(c, c) for c in word]
        # "ß" → "ss" etc. may lengthen a char; keep 1:1 by joining into one slot
        has_letter = any(c.isalpha() for c in word)
        if has_letter:
            for k, c in enumerate(word):
                if c in _LEET:
                    if c in _INNER_ONLY:
                        # a letter must come before it and a letter later in the word
                        left = word[k - 1] if k > 0 else ""
                        if not (left.isalpha() and any(c.isalpha() or (c in _LEET and c not in _INNER_ONLY) for c in word[k + 1:])):
                            continue
                    word[k] = _LEET[c]
        chars[i:j] = word
        i = j

    # flatten multi-char replacements ("ss") keeping their source span
    flat_c: list[str] = []
    flat_s: list[tuple[int, int]] = []
    for c, s in zip(chars, spans):
        for x in c:
            flat_c.append(x)
            flat_s.append(s)

    flat_c, flat_s = _join_fragments(flat_c, flat_s)
    flat_c, flat_s, stretched = _shorten_runs(flat_c, flat_s)
    return Normalized(text, "".join(flat_c), tuple(flat_s), stretched)


def _join_fragments(chars: list[str], spans: list[tuple[int, int]]) -> tuple[list[str], list[tuple[int, int]]]:
    """Drop separators between runs of 1–2 letter fragments ("f.u.c.k")."""
    # tokenise into alternating letter fragments and separator runs
    tokens: list[tuple[str, int, int]] = []  # (kind, start, end) kind: 'w', 's', 'o'
    n = len(chars)
    i = 0
    while i < n:
        c = chars[i]
        kind = "w" if c.isalpha() else ("s" if c in _SEPARATORS else "o")
        j = i + 1
        while j < n:
            c2 = chars[j]
            k2 = "w" if c2.isalpha() else ("s" if c2 in _SEPARATORS else "o")
            if k2 != kind:
                break
            j += 1
        tokens.append((kind, i, j))
        i = j
    drop: set[int] = set()
    t = 0
    while t < len(tokens):
        kind, s, e = tokens[t]
        if kind != "w" or e - s > 2:
            t += 1
            continue
        # collect a chain w s w s w ... of short fragments with 1-char separators
        chain = [t]
        u = t + 1
        while u + 1 < len(tokens):
            sk, ss, se = tokens[u]
            wk, ws, we = tokens[u + 1]
            if sk != "s" or se - ss != 1 or wk != "w" or we - ws > 2:
                break
            if chars[ss] == " " and not _space_link_ok(chars, tokens[u - 1], tokens[u + 1]):
                break
            chain.append(u + 1)
            u += 2
        frags = [tokens[x] for x in chain]
        singles = sum(1 for _, s2, e2 in frags if e2 - s2 == 1)
        total = sum(e2 - s2 for _, s2, e2 in frags)
        if len(frags) >= 2 and singles >= 1 and total >= 3:
            for x in range(chain[0] + 1, chain[-1], 2):
                _, ss, se = tokens[x]
                drop.update(range(ss, se))
            t = chain[-1] + 1
        else:
            t += 1
    if not drop:
        return chars, spans
    keep = [k for k in range(n) if k not in drop]
    return [chars[k] for k in keep], [spans[k] for k in keep]


def _space_link_ok(chars: list[str], left: tuple[str, int, int], right: tuple[str, int, int]) -> bool:
    """A space joins two fragments only if neither side is a real short word."""
    for _, s, e in (left, right):
        if e - s == 2 and "".join(chars[s:e]) in _SHORT_WORDS:
            return False
    # "a b c" style single letters, or a 2-letter non-word beside a single letter
    return (left[2] - left[1] == 1) or (right[2] - right[1] == 1)


def _shorten_runs(
    chars: list[str], spans: list[tuple[int, int]]
) -> tuple[list[str], list[tuple[int, int]], frozenset[int]]:
    """Shorten runs of 3+ identical letters to 2, widening the kept span.

    Returns the index of the second letter of each shortened run too.
    """
    out_c: list[str] = []
    out_s: list[tuple[int, int]] = []
    stretched: set[int] = set()
    for c, s in zip(chars, spans):
        if c.isalpha() and len(out_c) >= 2 and out_c[-1] == c and out_c[-2] == c:
            out_s[-1] = (out_s[-1][0], s[1])
            stretched.add(len(out_c) - 1)
            continue
        out_c.append(c)
        out_s.append(s)
    return out_c, out_s, frozenset(stretched)
