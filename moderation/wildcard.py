"""Moderator-supplied terms with ``*`` wildcards, matched in time linear in the comment.

A term is literal characters and ``*`` (any run of letters/digits, possibly
empty), matched as whole words: not preceded nor followed by a letter/digit.
A backtracking regex (``a[^\\W_]*a[^\\W_]*z`` ...) can take seconds on one
500-character comment; here every term of a set becomes a small automaton
(state *i* = "the first *i* literal characters matched"; a ``*`` is a
self-loop on letters/digits) and all automata of the set run at once as bits
of one integer (shift-and): one step per character of the comment, whatever
the terms and the text.

:class:`TermSet` answers two questions:

- :meth:`~TermSet.found` — which terms occur in a text (one forward pass);
- :meth:`~TermSet.coverage` — which characters lie inside some occurrence
  (a backward pass marks, at every position, the states from which an
  occurrence can still be completed; a character is covered when a forward
  state steps over it into such a state).

Coverage is what the filters need: a blocked occurrence is exempt when every
one of its characters is covered by allowed terms, which is the case exactly
when no character is covered by the blocked terms and not by the allowed ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .normalize import normalize

__all__ = ["Pattern", "TermSet", "compile_terms", "covered_spans", "parse_term"]


@dataclass(frozen=True)
class Pattern:
    """One term: its literal characters, and where ``*`` loops (``loops[i]``: after ``i`` literals)."""

    literals: str
    loops: tuple[bool, ...]


def parse_term(term: str) -> Pattern | None:
    """The pattern of ``term`` (its literal parts normalised like comments), None if it has no literal
    character (a bare ``*`` would match every word)."""
    parts = term.split("*")
    pieces = [normalize(part.strip() if len(parts) == 1 else part).text for part in parts]
    literals = "".join(pieces)
    if not literals:
        return None
    loops = [False] * (len(literals) + 1)
    position = 0
    for index, piece in enumerate(pieces):
        position += len(piece)
        if index < len(pieces) - 1:
            loops[position] = True
    return Pattern(literals, tuple(loops))


class TermSet:
    """The automata of a tuple of terms, as bit masks (term ``t`` owns bits ``offset_t .. offset_t + len``)."""

    def __init__(self, patterns: list[tuple[int, Pattern]]) -> None:
        self.size = len(patterns)
        width = sum(len(p.literals) + 1 for _, p in patterns)
        start, final, loop = _Bits(width), _Bits(width), _Bits(width)
        step: dict[str, _Bits] = {}  # character -> the states it leads into
        self._owner: list[tuple[int, int]] = []  # (final bit, term index)
        offset = 0
        for index, pattern in patterns:
            start.set(offset)
            last = offset + len(pattern.literals)
            final.set(last)
            self._owner.append((1 << last, index))
            for i, char in enumerate(pattern.literals):
                step.setdefault(char, _Bits(width)).set(offset + i + 1)
            for i, loops in enumerate(pattern.loops):
                if loops:
                    loop.set(offset + i)
            offset = last + 1
        self._start, self._final, self._loop = int(start), int(final), int(loop)
        self._step = {char: int(bits) for char, bits in step.items()}

    def found(self, text: str) -> set[int]:
        """Indices (in the tuple given to :func:`compile_terms`) of the terms occurring in ``text``."""
        finals = 0
        state = self._start
        step, loop, start, final = self._step, self._loop, self._start, self._final
        last = len(text) - 1
        for j, char in enumerate(text):
            word = char.isalnum()
            state = ((state << 1) & step.get(char, 0)) | (state & loop if word else 0)
            if state & final and (j == last or not text[j + 1].isalnum()):
                finals |= state & final
            if not word:
                state |= start
        return {index for bit, index in self._owner if finals & bit}

    def coverage(self, text: str) -> int:
        """Bit ``i`` set if character ``i`` of ``text`` lies inside an occurrence of some term."""
        step, loop, start, final = self._step, self._loop, self._start, self._final
        n = len(text)
        alnum = [char.isalnum() for char in text]
        # completable[j]: states from which text[j:] can finish an occurrence (at a word end)
        completable = [0] * (n + 1)
        completable[n] = final
        for j in range(n - 1, -1, -1):
            after = completable[j + 1]
            states = ((after & step.get(text[j], 0)) >> 1) | (after & loop if alnum[j] else 0)
            if not alnum[j]:
                states |= final  # an occurrence may end at j: text[j] is not a letter/digit
            completable[j] = states
        covered = 0
        state = start
        for j, char in enumerate(text):
            moved = ((state << 1) & step.get(char, 0)) | (state & loop if alnum[j] else 0)
            if moved & completable[j + 1]:
                covered |= 1 << j
            state = moved if alnum[j] else moved | start
        return covered


class _Bits:
    """A bit set built in place (one ``int`` built at the end, not one per bit set)."""

    def __init__(self, width: int) -> None:
        self._bytes = bytearray((width + 7) // 8)

    def set(self, bit: int) -> None:
        self._bytes[bit >> 3] |= 1 << (bit & 7)

    def __int__(self) -> int:
        return int.from_bytes(self._bytes, "little")


def covered_spans(covered: int, length: int) -> list[tuple[int, int]]:
    """The runs of set bits of ``covered`` as ``(start, end)`` spans."""
    spans: list[tuple[int, int]] = []
    j = 0
    while covered >> j and j < length:
        if covered >> j & 1:
            k = j
            while k < length and covered >> k & 1:
                k += 1
            spans.append((j, k))
            j = k
        else:
            j += 1
    return spans


@lru_cache(maxsize=1024)
def compile_terms(terms: tuple[str, ...]) -> TermSet | None:
    """The automata of ``terms`` (cached: settings change rarely); None if no term has a literal."""
    patterns = [(i, p) for i, p in ((i, parse_term(t)) for i, t in enumerate(terms)) if p is not None]
    return TermSet(patterns) if patterns else None
