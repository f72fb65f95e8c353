"""Profanity: better-profanity's word list, compiled into one regex.

The list file is read from the installed better_profanity package, each
entry normalised like comments, and the entries built into a prefix tree
emitted as one regex, so a comment is
checked in one pass over its normalised text (a second pass over the
collapsed form only when the comment stretched letters: "fuuuuck").  Matches are mapped back to the
original text and replaced by ``****`` (better-profanity's censoring).

Against Scunthorpe false positives: whole words only; links are left to the
link policy; identity words in the list (gay, lesbians, queer) are not
censored, since naming a group is not profanity (hate about a group is the
harassment filter's job); and words with an everyday meaning (dick, cum,
xxx ...) are spared inside proper names ("Dick Van Dyke", "Super Bowl XXX")
and known phrases ("magna cum laude").
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

from ..context import CommentContext
from ..links import find_links
from ..normalize import normalize, squeeze
from ..settings import ModerationSettings
from ..verdict import Action, FilterResult
from .terms import allowed_spans, inside

__all__ = ["ProfanityFilter", "find_profanity", "wordlist_path", "load_wordlist", "compile_wordlist", "censor"]

CENSOR = "****"
_IDENTITY_WORDS = frozenset({"gay", "gays", "lesbian", "lesbians", "queer", "queers"})
# listed words that are also ordinary words or names
_AMBIGUOUS = frozenset({
    "dick", "dicks", "cock", "cocks", "cum", "xxx", "dyke", "dykes", "hell", "sex", "tit", "tits",
    "balls", "bang", "knob", "willy", "wang", "pecker", "fanny", "muff", "beaver", "pussy", "prick",
    "screw", "bone", "boner", "crack", "homo", "jap", "kill", "stupid", "moron", "nazi", "hooker",
})
# listed words whose everyday meaning (anatomy, medicine, drugs, plain
# adjectives and verbs) dominates in chat: never censored ("medieval erection
# of parapets"); insults and threats built from them are the harassment
# filter's job
_EVERYDAY = frozenset(
    "anus areole bestial bondage crotch doofus dopey drunk dummy enlargement erect erection erotic "
    "facial fat flange fondle foreskin ganja glans god gonad hemp heroin herpes homey hooch hookah "
    "hymen inbred jerk kill kinky labia leper loin lust lusty menses menstruate menstruation meth "
    "murder naked napalm nappy ninny nipple nude opiate opium oral orally organ ovary ovum paddy pasty "
    "pawn pcp pee penetrate penetration penis perversion phallic pot prude prig pubic pubis racy rectal "
    "rectum rectus reefer rum rump scantily seaman seduce semen sexual slave sleazy slope snuff souse "
    "soused sperm steamy strip stroke stupid teat teste testes testicle testis thrust tinkle tramp "
    "trashy tush ugly unwed urinal urine uterus vagina virgin vixen vodka vomit vulgar vulva wad weed "
    "whiz womb woody".split()
)
_AMBIGUOUS_SQUEEZED = frozenset(squeeze(w) for w in _AMBIGUOUS)
_SAFE_PHRASES = re.compile(
    r"\b(?:(?:magna|summa|maxima) cum\b|cum laude\b|cum grano\b|cum hoc\b|cum dividend|tit (?:for|4|a) tat\b)"
)


def wordlist_path() -> str:
    """Path of better-profanity's bundled word list."""
    import better_profanity

    return os.path.join(os.path.dirname(better_profanity.__file__), "profanity_wordlist.txt")


def load_wordlist() -> list[str]:
    with open(wordlist_path(), encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip()]


def _units(word: str) -> list[str]:
    """Regex units for one normalised entry: gaps are optional."""
    out = []
    for c in word:
        if c.isalpha():
            out.append(re.escape(c))
        elif c in " -_.":
            out.append(r"[ \-_.]?")
        else:
            out.append(re.escape(c))
    return out


def _trie_regex(entries: list[list[str]]) -> str:
    trie: dict[str, Any] = {}
    for units in entries:
        node = trie
        for u in units:
            node = node.setdefault(u, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        terminal = "" in node
        alts = [u + emit(child) for u, child in sorted(node.items()) if u != ""]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if terminal else body

    return emit(trie)


@lru_cache(maxsize=1)
def compile_wordlist() -> re.Pattern[str]:
    """The whole word list as one regex over normalised text."""
    entries = set()
    for w in load_wordlist():
        n = normalize(w).text
        if n and n not in _IDENTITY_WORDS and n not in _EVERYDAY:
            entries.add(n)
    body = _trie_regex([_units(e) for e in sorted(entries)])
    return re.compile(r"(?<![^\W_])(?:" + body + r")(?![^\W_])")


def _word_at(text: str, start: int, end: int) -> tuple[str, str, str]:
    """(previous word, the word, next word) of the original text around a span."""
    before = re.findall(r"[^\W_]+", text[:start])
    after = re.findall(r"[^\W_]+", text[end:])
    return (before[-1] if before else "", text[start:end], after[0] if after else "")


def _is_capitalised(word: str) -> bool:
    return bool(word) and word[0].isupper()


def _in_proper_name(original: str, start: int, end: int) -> bool:
    letters = [c for c in original if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) > 0.6 * len(letters):
        return False  # shouting in capitals is not a name
    prev, word, nxt = _word_at(original, start, end)
    if not _is_capitalised(word):
        return False
    return (len(prev) > 1 and _is_capitalised(prev)) or (len(nxt) > 1 and _is_capitalised(nxt))


def find_profanity(ctx: CommentContext, settings: ModerationSettings) -> list[tuple[int, int]]:
    """Original-text spans of listed words, after the exemptions above."""
    norm = ctx.normalized
    rx = compile_wordlist()
    found: list[tuple[str, int, int]] = []  # (matched word, original start, end)
    safe_orig: list[tuple[int, int]] = []
    allowed = allowed_spans(ctx, settings)
    for text, spans_map in ((norm.text, norm.spans), norm.collapsed()) if norm.stretched else ((norm.text, norm.spans),):
        for m in _SAFE_PHRASES.finditer(text):
            safe_orig.append((spans_map[m.start()][0], spans_map[m.end() - 1][1]))
        for m in rx.finditer(text):
            found.append((m.group(0), spans_map[m.start()][0], spans_map[m.end() - 1][1]))
    if not found:
        return []
    allowed_orig = [norm.original_span(a, b) for a, b in allowed]
    links = [(s, e) for s, e, _ in find_links(norm.original)]
    spans = []
    for word, s, e in found:
        if inside((s, e), allowed_orig) or inside((s, e), safe_orig):
            continue
        if any(ls < e and s < le for ls, le in links):
            continue
        if squeeze(word) in _AMBIGUOUS_SQUEEZED and _in_proper_name(norm.original, s, e):
            continue
        spans.append((s, e))
    return spans


def censor(text: str, spans: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> str:
    """Replace each (merged) span of `text` with ****."""
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, pos = [], 0
    for s, e in merged:
        out.append(text[pos:s])
        out.append(CENSOR)
        pos = e
    out.append(text[pos:])
    return "".join(out)


class ProfanityFilter:
    name = "profanity"

    def __init__(self) -> None:
        compile_wordlist()  # build once, up front, not on the first comment

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None:
        if not settings.profanity:
            return None
        spans = find_profanity(ctx, settings)
        if not spans:
            return None
        return FilterResult(Action.PUBLISH_CENSORED, "profanity", censor_spans=tuple(spans))
