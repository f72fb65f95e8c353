"""Script-specific folding, applied after `moderation.normalize` (which already lower-cases, drops
combining marks and accents, maps look-alikes and leetspeak in Latin words).

- Arabic: tatweel and any remaining harakat dropped; hamza-carrying alefs,
  alef wasla and madda → bare alef; alef maqsura → ya; ta marbuta → ha; hamza
  on waw/ya → waw/ya; Persian kaf/ya → Arabic; Arabic-Indic digits → ASCII.
  Arabic chat spells the same word all these ways.
- Devanagari (Hindi): transliterated to the Latin spelling Hindi speakers type
  in chat ("नफ़रत" → "nafrat"), so one word list and one model serve both.
- Romanised Hindi: long vowels and common doubled spellings folded
  ("nafraat", "aurton", "bahoot" → "nafrat", "aurton", "bahut").
- Chinese needs no segmenter here: the model reads character n-grams and the
  word lists match substrings, so no word boundaries are required.
- German compounds likewise: word lists match inside compounds (see
  `moderation.languages.wordlists`) and the model reads character n-grams.
"""

from __future__ import annotations

import re

__all__ = ["fold", "fold_arabic", "devanagari_to_latin", "fold_romanised_hindi"]

_ARABIC = str.maketrans({
    "ـ": None, "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي",
    "ک": "ك", "ی": "ي", "ې": "ي", "ھ": "ه",
    **{chr(0x0660 + i): str(i) for i in range(10)}, **{chr(0x06F0 + i): str(i) for i in range(10)},
    **{chr(c): None for c in range(0x064B, 0x0660)}, "\u0670": None,
})


def fold_arabic(text: str) -> str:
    return text.translate(_ARABIC)


_DEV_VOWELS = {"अ": "a", "आ": "a", "इ": "i", "ई": "i", "उ": "u", "ऊ": "u", "ऋ": "ri", "ए": "e", "ऐ": "ai",
               "ओ": "o", "औ": "au", "ऑ": "o"}
_DEV_SIGNS = {"ा": "a", "ि": "i", "ी": "i", "ु": "u", "ू": "u", "ृ": "ri", "े": "e", "ै": "ai", "ो": "o",
              "ौ": "au", "ॉ": "o"}
_DEV_CONS = {
    "क": "k", "ख": "kh", "ग": "g", "घ": "gh", "ङ": "n", "च": "ch", "छ": "chh", "ज": "j", "झ": "jh", "ञ": "n",
    "ट": "t", "ठ": "th", "ड": "d", "ढ": "dh", "ण": "n", "त": "t", "थ": "th", "द": "d", "ध": "dh", "न": "n",
    "प": "p", "फ": "ph", "ब": "b", "भ": "bh", "म": "m", "य": "y", "र": "r", "ल": "l", "व": "v", "श": "sh",
    "ष": "sh", "स": "s", "ह": "h", "क़": "k", "ख़": "kh", "ग़": "g", "ज़": "z", "ड़": "r", "ढ़": "rh", "फ़": "f",
}
_NUKTA, _VIRAMA = "\u093c", "\u094d"
_NASAL = {"ं": "n", "ँ": "n", "ः": "h"}
_NUKTA_FORMS = {"क": "क़", "ख": "ख़", "ग": "ग़", "ज": "ज़", "ड": "ड़", "ढ": "ढ़", "फ": "फ़"}


def _voiced_next(text: str, j: int) -> bool:
    """Does the consonant at `j` carry a vowel (a sign, or its inherent "a" inside the word)?"""
    k = j + 1
    if k < len(text) and text[k] == _NUKTA:
        k += 1
    if k >= len(text):
        return False
    nxt = text[k]
    return nxt in _DEV_SIGNS or nxt in _DEV_CONS or nxt in _NASAL


def devanagari_to_latin(text: str) -> str:
    """Chat-style Latin spelling of Devanagari text; other characters pass through.

    The inherent "a" of a consonant is written inside a word and dropped at its
    end, and dropped in the middle between a vowel and a consonant that carries
    one (schwa deletion, roughly as Hindi is spoken: मिलते "milte", नफ़रत "nafrat").
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _DEV_CONS:
            if i + 1 < n and text[i + 1] == _NUKTA:
                c = _NUKTA_FORMS.get(c, c)
                i += 1
            out.append(_DEV_CONS[c])
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt in _DEV_SIGNS:
                out.append(_DEV_SIGNS[nxt])
                i += 1
            elif nxt == _VIRAMA:
                i += 1
            elif nxt in _NASAL:
                out.append("a")
            elif nxt in _DEV_CONS:
                after_vowel = len(out) >= 2 and out[-2][-1:] in "aeiou"
                if not (after_vowel and _voiced_next(text, i + 1)):
                    out.append("a")
        elif c in _DEV_VOWELS:
            out.append(_DEV_VOWELS[c])
        elif c in _NASAL:
            out.append(_NASAL[c])
        elif c == "।":
            out.append(".")
        elif 0x0966 <= ord(c) <= 0x096F:
            out.append(str(ord(c) - 0x0966))
        elif c not in (_NUKTA, _VIRAMA):
            out.append(c)
        i += 1
    return "".join(out)


_HINDI_FOLDS = ((re.compile(r"aa+"), "a"), (re.compile(r"ee+"), "i"), (re.compile(r"oo+"), "u"),
                (re.compile(r"(?<=[a-z])w"), "v"), (re.compile(r"([bcdfghjklmnpqrstvxyz])\1"), r"\1"))


def fold_romanised_hindi(text: str) -> str:
    for rx, rep in _HINDI_FOLDS:
        text = rx.sub(rep, text)
    return text


def fold(text: str, lang: str | None = None) -> str:
    """Fold normalised `text` for matching: every script's folding (they touch disjoint
    characters), plus the romanised-Hindi spelling folds when `lang` is "hi"."""
    if any("\u0600" <= c <= "\u06ff" for c in text):
        text = fold_arabic(text)
    if any("\u0900" <= c <= "\u097f" for c in text):
        text = devanagari_to_latin(text)
    if lang == "hi":
        text = fold_romanised_hindi(text)
    return text
