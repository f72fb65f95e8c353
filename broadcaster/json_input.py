"""Strict JSON for everything a client sends: exact numbers, bounded nesting, one clear error.

Python's ``json.loads`` accepts ``NaN``/``Infinity`` (not JSON; a stored NaN
makes every later answer invalid JSON), numbers of any size (``1e23``, an
integer of 4,000 digits) and fails with ``RecursionError`` on deep nesting.
:func:`loads` refuses all of them with :class:`JsonInputError`, whose message
a handler answers with 400:

- ``NaN``, ``Infinity``, ``-Infinity``: refused;
- numbers outside ±(2^53 − 1), the range JSON numbers keep exactly (integers and
  floats alike, so ``1e23`` is refused everywhere; each field then has its own
  narrower bounds);
- arrays/objects nested deeper than ``max_depth`` (32 by default).
"""

from __future__ import annotations

import json
import re
from typing import Any

#: the largest magnitude a JSON number may have here (Number.MAX_SAFE_INTEGER)
MAX_SAFE = 2 ** 53 - 1
MAX_DEPTH = 32
_MAX_DIGITS = len(str(MAX_SAFE)) + 1  # a longer integer literal is out of range whatever its digits

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = re.compile(r'[^\[\]{}]+')


class JsonInputError(ValueError):
    """The text is not JSON this node accepts; the message says why."""


def _constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a JSON number")


def _integer(literal: str) -> int:
    if len(literal.lstrip("-")) > _MAX_DIGITS or abs(value := int(literal)) > MAX_SAFE:
        raise JsonInputError(f"number {literal[:40]} is out of range (at most ±{MAX_SAFE})")
    return value


def _float(literal: str) -> float:
    value = float(literal)
    if not abs(value) <= MAX_SAFE:  # also catches an overflow to inf
        raise JsonInputError(f"number {literal[:40]} is out of range (at most ±{MAX_SAFE})")
    return value


def nesting_depth(text: str, limit: int) -> int:
    """How deep arrays/objects nest in ``text`` (brackets inside strings do not count),
    counting no further than ``limit + 1``."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw`` (UTF-8 if bytes) strictly; :class:`JsonInputError` says what is wrong."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonInputError(f"invalid JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    else:
        text = raw
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text, max_depth) > max_depth:
        raise JsonInputError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_constant, parse_int=_integer, parse_float=_float)
    except JsonInputError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"invalid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer literal past Python's digit limit
        raise JsonInputError(f"invalid JSON: {exc}") from None


__all__ = ["JsonInputError", "MAX_DEPTH", "MAX_SAFE", "loads", "nesting_depth"]
