"""Language identification per comment: script first, then py3langid, then the broadcast's expectations.

Order of evidence:
1. Script.  Arabic letters mean Arabic, Han characters Mandarin, Devanagari
   Hindi; no statistics needed.  A comment mixing scripts gets each language.
2. Romanised Hindi.  Hindi typed in Latin letters (the usual way in chat) is
   recognised by its function words ("hai", "nahi", "mujhe" ...); py3langid
   has no romanised-Hindi model.
3. py3langid (a maintained fork of langid.py that ships its model, 4.4 MB
   wheel) ranks the Latin-script languages.  Chosen over
   lingua-language-detector, which is as accurate on these comments but a
   92 MB wheel, +290 MB of memory and 4x slower (docs/benchmarks.md).
4. Short or uncertain text (fewer than `SHORT_LETTERS` letters, or a top
   probability under `CONFIDENT`) is not trusted to one language: the
   candidates are the top two plus the broadcast's expected languages, and
   filters run for each.

`expected` (the broadcast's languages; empty = all) is a prior, not a
filter: a comment confidently in another language is moderated as that
language (a troll need not write in the broadcast's language); an unsure one
is ranked among the expected languages and gets them all as candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["SUPPORTED", "LanguageGuess", "identify", "CONFIDENT", "SHORT_LETTERS"]

SUPPORTED: dict[str, str] = {
    "en": "English", "ar": "Arabic", "nl": "Dutch", "fr": "French", "de": "German", "hi": "Hindi",
    "it": "Italian", "zh": "Mandarin", "pl": "Polish", "pt": "Portuguese", "es": "Spanish",
}
_LATIN = ("en", "nl", "fr", "de", "it", "pl", "pt", "es")
CONFIDENT = 0.90
SHORT_LETTERS = 12

# Frequent Hindi/Urdu words as typed in Latin letters, leaving out those that
# are also common words of the other Latin-script languages ("the", "main",
# "se", "par", "ja"); two distinct hits are needed, or one of `_HINDI_MARKERS`.
_HINGLISH = frozenset("""
hai hain nahi nahin nai mujhe mujhko tujhe tujhko tum tumhe tumhara tumhari aap aapko hum humko hame hamein
yeh woh voh unko inko unhe inhe unka inka uska iska kya kyun kyon kaise kahan kab aur bhi bahut bohot sab
sabhi logon kuch koi mera meri mere tera teri tere apna apni apne hota hoti hote tha thi raha rahi rahe gaya
gayi karo karna karte karta karti chahiye sakte sakta sakti wale wali wala jaise liye ko ki ka ke mein toh tho
ab abhi yahan wahan accha acha yaar yar bhai behen dost kal aaj maza mazaa aaya aya aayi ayi jao jaa aao dekho
dekha suno bolo bola kaha kehta kehte samajh pata lagta lagti lagte achha bura buri sach jhooth pyaar pyar
nafrat dil zindagi duniya desh ghar kaam paisa sirf kabhi hamesha phir fir waise chalo haan
""".split())
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """Languages to moderate a comment with, most likely first.

    `confident` is False when the text was too short or too mixed to trust one
    language (the candidates then include the broadcast's expected ones).
    `source` says what decided the first: "script", "romanised", "langid",
    "expected" (nothing to go on: the broadcast's first language) or "none".
    """

    languages: tuple[str, ...]
    confident: bool
    source: str

    @property
    def primary(self) -> str | None:
        return self.languages[0] if self.languages else None


@lru_cache(maxsize=1)
def _identifier() -> Any:  # py3langid.langid.LanguageIdentifier (untyped)
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(_LATIN))
    return ident


def warm_up() -> None:
    """Load the py3langid model now (about 0.9 s) rather than on the first comment."""
    _identifier()


def _scripts(text: str) -> tuple[list[str], int]:
    """Languages proven by script, in order of first appearance, and the count of Latin letters."""
    found: list[str] = []
    latin = 0
    for c in text:
        o = ord(c)
        if o < 0x250:
            if c.isalpha():
                latin += 1
            continue
        lang = None
        if 0x0600 <= o <= 0x06FF or 0x0750 <= o <= 0x077F or 0xFB50 <= o <= 0xFDFF or 0xFE70 <= o <= 0xFEFF:
            lang = "ar"
        elif 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
            lang = "zh"
        elif 0x0900 <= o <= 0x097F:
            lang = "hi"
        if lang and lang not in found:
            found.append(lang)
    return found, latin


# Of those, words no other language here has at all: one is enough.
_HINDI_MARKERS = frozenset("""
hai hain nahi nahin mujhe mujhko tujhe tujhko tumhe tumhara tumhari aapko humko hamein unko inko unhe inhe
kyun kyon kaise kahan hota hoti hote chahiye sakte sakta sakti mera meri mere tera teri tere apna apni apne
bahut bohot karna karte karta karti
""".split())


def _romanised_hindi(words: list[str]) -> bool:
    hits = {w for w in words if w in _HINGLISH}
    return len(hits) >= 2 or bool(hits & _HINDI_MARKERS)


def identify(text: str, expected: tuple[str, ...] = ()) -> LanguageGuess:
    """Candidate languages of `text` (see the module docstring)."""
    scripts, latin = _scripts(text)
    langs: list[str] = list(scripts)
    source = "script" if scripts else "none"
    # one non-Latin script and (almost) no Latin letters: certain
    confident = len(scripts) == 1 and latin < 3
    if latin >= 3 or (latin and not scripts):
        words = [w.lower() for w in _WORD.findall(text) if all(ord(c) < 0x250 for c in w)]
        hinglish = _romanised_hindi(words)
        if hinglish:
            if "hi" not in langs:
                langs.append("hi")
            if not scripts:
                source, confident = "romanised", True
        # Latin text that is not (only) romanised Hindi: rank the Latin-script languages
        others = [w for w in words if w not in _HINGLISH]
        if not hinglish or len(others) >= 3 and len(others) >= len(words) / 2:
            ranked = _rank(text, _LATIN)
            sure = latin >= SHORT_LETTERS and ranked[0][1] >= CONFIDENT
            if not sure and any(c in _LATIN for c in expected):
                ranked = [r for r in ranked if r[0] in expected]  # unsure: the broadcast's languages first
            for code, _ in ranked[: 1 if sure else 2]:
                if code not in langs:
                    langs.append(code)
            if not scripts and not hinglish:
                source, confident = "langid", sure
            elif hinglish:
                confident = False  # code-switched
    if not confident:
        for code in expected:
            if code not in langs:
                langs.append(code)
        if not langs and expected:
            source = "expected"
    return LanguageGuess(tuple(langs), confident, source)


def _rank(text: str, pool: tuple[str, ...]) -> list[tuple[str, float]]:
    """py3langid's probabilities over `pool`, renormalised, best first."""
    ranked = [(code, p) for code, p in _identifier().rank(text) if code in pool]
    total = sum(p for _, p in ranked) or 1.0
    return [(code, p / total) for code, p in ranked]
