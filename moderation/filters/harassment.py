"""Harassment: scores insults, threats, hate and self-harm incitement, even without listed words.

A transparent scorer, not a trained model: hand-written lexicons
(`harassment_lexicon`) and patterns combined by rules that mirror how hate
is built: a protected *group* plus *hostility* (contempt, dehumanisation,
exclusion, a negated positive such as "never attractive"), or plus a
*threat*; threats and insults aimed at *you*; self-harm incitement.
Negation ("no hatred", "never condone the killing") cancels a hostile word,
and counter-speech (quoting or condemning hate: "calling them cockroaches is
horrible") halves the score.

Misspellings are undone per token before lookup: joined words are split
("ihate", "absolutefilth"), and tokens that are not English words (checked
against the gcide word list of the `english-words` package) are matched to a
lexicon word one deletion or one swap away ("hatrd", "haet").

The score (0–1) maps to hold/reject by the broadcast's strictness for
English (`THRESHOLDS`), Twitch-AutoMod style.  English only: a comment
confidently in another language is left to `filters/hate_model`.  Runs in microseconds; no batching.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..context import CommentContext
from ..normalize import squeeze
from ..settings import ModerationSettings, Strictness
from ..verdict import Action, FilterResult
from . import harassment_lexicon as L
from .profanity import compile_wordlist

__all__ = ["HarassmentFilter", "Score", "score_text", "THRESHOLDS"]

# strictness → (hold at or above, reject at or above)
THRESHOLDS: dict[Strictness, tuple[float, float]] = {
    Strictness.LOW: (0.8, 0.9),
    Strictness.MEDIUM: (0.6, 0.9),
    Strictness.HIGH: (0.4, 0.8),
}

_LEX = L.GROUPS | L.SLURS | L.HOSTILE | L.THREAT | L.POSITIVE | L.INSULTS
# adjectives that name a group only when they qualify a person ("black
# people", not "black coffee")
_GROUP_ADJ = frozenset("black white trans gay disabled female asian jewish chinese indian mexican".split())
_PERSON_NOUNS = frozenset(
    "people person persons folk folks men man women woman lives life kids guys community children boys "
    "girls immigrants throats friends colleagues neighbours neighbors".split()
)
_NEGATORS = L.NEGATORS | {"opposite"}
# slurs that are also ordinary words (embankment, cigarette, female dog, raccoon):
# never enough on their own
_HOMONYM_SLURS = frozenset("dyke dykes fag fags faggot faggots bitch bitches coon coons".split())
_AUXILIARIES = frozenset("are is do does did would could should can was were have has will".split())
_FIRST_PERSON = frozenset("i me my myself im mine we us our".split())
_COUNTER_IF_NEGATED = frozenset("believe claim think tolerate condone accept".split())
_COUNTER_WORDS = L.COUNTER - _COUNTER_IF_NEGATED - {"say", "said", "says", "stuff", "things", "stop",
                                                      "message", "messages", "call", "calls", "tell",
                                                      "write", "threaten", "wrong", "quote"}
_COUNTER_PATTERNS = re.compile(
    r"\b(?:stuff|things|messages|comments|words|something|posts) like\b|\bcall(?:ing|s|ed)? (?:for|out)\b|"
    r"\bsays a lot\b|\bhow can you\b|\bquote\b"
)
_SELF_HARM = re.compile("|".join(L.SELF_HARM_PATTERNS))
_INSULT = re.compile("|".join(L.INSULT_PATTERNS))
_MILD_INSULT = re.compile(L.MILD_INSULT_PATTERN)
_EXCLUSION = re.compile("|".join(L.EXCLUSION_PATTERNS))
_CONTRACTIONS = (
    (re.compile(r"\bcan'?t\b"), "can not"), (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"n't\b"), " not"), (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"'re\b"), " are"), (re.compile(r"'m\b"), " am"), (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'d\b"), " would"), (re.compile(r"'ve\b"), " have"), (re.compile(r"'s\b"), ""),
)
_QUOTE_RE = re.compile(r"[\"“”«»„]([^\"“”«»„]*)[\"“”«»„]")
_CLAUSE_RE = re.compile(r"[.!?;,:\n]+")
_WORD_RE = re.compile(r"[a-z]+")


@lru_cache(maxsize=1)
def _english() -> frozenset[str]:
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["gcide"], lower=True, alpha=True))


def _known(word: str) -> bool:
    """Is `word` an English word (allowing common inflections)?"""
    if len(word) <= 2 or word in _LEX:
        return True
    eng = _english()
    if word in eng:
        return True
    for suf in ("s", "es", "ed", "d", "ing", "ly", "er", "ers"):
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            stem = word[: -len(suf)]
            if suf == "d" and not stem.endswith("e"):
                continue
            if stem in eng or stem + "e" in eng:
                return True
    return False


@lru_cache(maxsize=1)
def _fuzzy_index() -> dict[str, str]:
    """Misspelling → lexicon word, for one deletion (words ≥ 5) or one adjacent swap."""
    idx: dict[str, str] = {}
    for w in sorted(_LEX):
        if len(w) < 4:
            continue
        variants: set[str] = set()
        if len(w) >= 5:
            variants.update(w[:i] + w[i + 1:] for i in range(len(w)))
        variants.update(w[:i] + w[i + 1] + w[i] + w[i + 2:] for i in range(len(w) - 1))
        for v in variants:
            if v != w and v not in _LEX and not _known(v):
                idx.setdefault(v, w)
    return idx


@lru_cache(maxsize=65536)
def _canon(tok: str) -> tuple[str, ...]:
    """Lexicon form(s) of one token (tries both repeated-letter forms)."""
    if tok in _LEX:
        return (tok,)
    sq = squeeze(tok)
    if sq in _LEX:
        return (sq,)
    if _known(tok):
        return (tok,)
    fz = _fuzzy_index()
    if tok in fz:
        return (fz[tok],)
    if len(tok) >= 4:
        best: tuple[str, ...] | None = None
        for i in range(1, len(tok)):
            a, b = tok[:i], tok[i:]
            if (a in _LEX and len(a) >= 3 and _known(b)) or (b in _LEX and len(b) >= 3 and _known(a)):
                if best is None or max(len(a), len(b)) > max(len(x) for x in best):
                    best = (a, b)
        if best:
            return best
    return (tok,)


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    category: str | None


def _tokens(text: str) -> list[tuple[list[str], bool]]:
    """Clauses of canonical tokens, each flagged as inside quotes or not."""
    for rx, rep in _CONTRACTIONS:
        text = rx.sub(rep, text)
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for m in _QUOTE_RE.finditer(text):
        pieces.append((text[pos:m.start()], False))
        pieces.append((m.group(1), True))
        pos = m.end()
    pieces.append((text[pos:], False))
    out = []
    for piece, quoted in pieces:
        for clause in _CLAUSE_RE.split(piece):
            toks: list[str] = []
            for w in _WORD_RE.findall(clause):
                toks.extend(_canon(w))
            if toks:
                out.append((toks, quoted))
    return out


def _negated(toks: list[str], i: int, window: int) -> bool:
    lo = max(0, i - window)
    for j in range(i - 1, lo - 1, -1):
        if toks[j] in L.NEGATION_STOPS:
            lo = j + 1
            break
    for j in range(lo, i):
        if j == 1 and toks[0] in _AUXILIARIES and toks[j] == "not":
            continue  # a negative question ("aren't they ...?", "don't you think ...") asserts
        if toks[j] in _NEGATORS and not (j + 1 < len(toks) and toks[j + 1] in L.NEGATION_BREAKERS):
            if toks[j] == "but":
                continue
            # "nothing but contempt": the negator is an intensifier
            return True
    return False


def score_text(normalized_text: str, profane: bool = False) -> Score:
    """Harassment score of a normalised comment.  `profane`: the profanity filter matched."""
    clauses = _tokens(normalized_text)
    group = hostile = threat = slur = counter = False
    hostile_q = threat_q = False
    second = insult = self_harm = first = plain_slur = False
    threat_person = mild_insult = False
    for toks, quoted in clauses:
        joined = " ".join(toks)
        for i, t in enumerate(toks):
            if t in L.GROUPS:
                if t in _GROUP_ADJ:
                    nxt = toks[i + 1] if i + 1 < len(toks) else ""
                    if nxt in _PERSON_NOUNS or nxt in L.HOSTILE or nxt in L.SLURS or t.endswith("s"):
                        group = True
                else:
                    group = True
            if t in L.SLURS:
                slur = True
                if t not in _HOMONYM_SLURS:
                    plain_slur = True
            if t in _FIRST_PERSON:
                first = True
            if t in L.SECOND_PERSON:
                second = True
            if t in L.HOSTILE and not _negated(toks, i, 6):
                hostile_q, hostile = (True, hostile) if quoted else (hostile_q, True)
            if t in L.THREAT and not _negated(toks, i, 6):
                threat_q, threat = (True, threat) if quoted else (threat_q, True)
                # an act against a person: "kill him", "stab you"
                if not quoted and t not in L.STATE_THREAT and any(
                    x in L.OBJECT_PRONOUNS for x in toks[i + 1:i + 4]
                ):
                    threat_person = True
            if t in L.POSITIVE and _negated(toks, i, 6):
                hostile_q, hostile = (True, hostile) if quoted else (hostile_q, True)
            if not quoted and (t in _COUNTER_WORDS or (t in _COUNTER_IF_NEGATED and _negated(toks, i, 3))):
                counter = True
        if _EXCLUSION.search(joined):
            hostile_q, hostile = (True, hostile) if quoted else (hostile_q, True)
        if not quoted:
            if _SELF_HARM.search(joined):
                self_harm = True
            if _INSULT.search(joined):
                insult = True
            elif _MILD_INSULT.search(joined):
                mild_insult = True
            if _COUNTER_PATTERNS.search(joined):
                counter = True
    # hostility that appears only inside quotes is reported speech
    if (hostile_q or threat_q) and not (hostile or threat):
        counter = True
        hostile, threat = hostile_q, threat_q
    if self_harm:
        return Score(0.95, "self_harm")
    if group and threat:
        value, cat = 0.95, "threat"
    elif group and (hostile or slur or profane):
        value, cat = 0.8, "hate"
    elif slur and (hostile or threat or insult or second):
        value, cat = 0.8, "hate"
    elif plain_slur and not first:
        # a slur about others; first-person use is often reclaimed ("I'm a proud ...")
        value, cat = 0.65, "slur"
    elif threat_person:
        value, cat = 0.7, "threat"
    elif insult:
        value, cat = 0.7, "insult"
    elif mild_insult or (hostile and second):
        value, cat = 0.5, "insult" if mild_insult else "hostility"
    elif slur:
        value, cat = 0.5, "slur"
    elif threat:
        value, cat = 0.45, "threat"
    elif hostile:
        value, cat = 0.3, "hostility"
    else:
        return Score(0.0, None)
    if counter:
        value *= 0.5
    return Score(value, cat)


class HarassmentFilter:
    name = "harassment"

    def __init__(self) -> None:
        _fuzzy_index()  # load the word list up front, not on the first comment

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None:
        guess = ctx.language
        if guess is not None and guess.confident and "en" not in guess.languages:
            return None  # confidently another language: the hate model's job (English words here mislead: "die")
        strictness = settings.strictness_for("en")
        if strictness is Strictness.OFF:
            return None
        profane = compile_wordlist().search(ctx.normalized.text) is not None
        s = score_text(ctx.normalized.text, profane)
        hold_at, reject_at = THRESHOLDS[strictness]
        if s.value >= reject_at:
            return FilterResult(Action.REJECT, s.category or "harassment", score=s.value)
        if s.value >= hold_at:
            return FilterResult(Action.HOLD, s.category or "harassment", score=s.value)
        return None
