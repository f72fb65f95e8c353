"""Per-broadcast moderation settings: a JSON-serialisable dataclass.

Others store it (Redis/SQLite) through `to_dict`/`from_dict`; `from_dict`
validates every field and raises SettingsError with an exact message.

Every field has bounds (a value outside them is refused, never clamped):

=====================================  =============================================
field                                  accepted values
=====================================  =============================================
strictness                             off, low, medium, high
blocked_terms, allowed_terms           up to 1000 terms of 1-100 characters (``*`` wildcards)
allowed_domains                        up to 1000 domains of 1-253 characters
link_policy                            allow, block, allowlist
slow_mode_seconds, rate_limit_window,  finite seconds, 0-86400
duplicate_window
rate_limit_count                       integer, 1-1000
max_mentions                           integer, 1-100
max_char_run, max_emoji                integer, 1-500 (a comment has at most 500 characters)
profanity                              true or false
languages                              supported language codes, each at most once
language_strictness                    supported language code -> off, low, medium, high
=====================================  =============================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any

from .errors import SettingsError
from .languages.identify import SUPPORTED

__all__ = ["Strictness", "LinkPolicy", "ModerationSettings"]


class Strictness(str, enum.Enum):
    """Harassment strictness, like Twitch AutoMod's levels."""

    OFF = "off"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class LinkPolicy(str, enum.Enum):
    """What to do with links: allow all, block all, or allow listed domains only."""

    ALLOW = "allow"
    BLOCK = "block"
    ALLOWLIST = "allowlist"


@dataclass(frozen=True, slots=True)
class ModerationSettings:
    """Settings of one broadcast.  Defaults suit a public chat."""

    strictness: Strictness = Strictness.MEDIUM
    blocked_terms: tuple[str, ...] = ()
    allowed_terms: tuple[str, ...] = ()
    slow_mode_seconds: float = 0.0
    link_policy: LinkPolicy = LinkPolicy.ALLOW
    allowed_domains: tuple[str, ...] = ()
    rate_limit_count: int = 5          # at most this many comments ...
    rate_limit_window: float = 10.0    # ... per this many seconds per viewer
    duplicate_window: float = 30.0     # same text from the same viewer within this is a duplicate
    max_mentions: int = 5
    max_char_run: int = 12             # one character repeated more than this is flooding
    max_emoji: int = 20
    profanity: bool = True             # censor better-profanity's word list (and each language's list)
    # the broadcast's expected languages (codes of moderation.languages.SUPPORTED; empty = all):
    # they decide short or ambiguous comments' language
    languages: tuple[str, ...] = ()
    # harassment strictness per language, overriding `strictness` (JSON: {"de": "high"})
    language_strictness: tuple[tuple[str, Strictness], ...] = ()

    def strictness_for(self, lang: str | None) -> Strictness:
        """The harassment strictness for comments in `lang`."""
        for code, level in self.language_strictness:
            if code == lang:
                return level
        return self.strictness

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, enum.Enum):
                v = v.value
            elif f.name == "language_strictness":
                v = {code: level.value for code, level in v}
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "ModerationSettings":
        """Validate and build; unknown keys are an error (catches typos)."""
        if not isinstance(data, dict):
            raise SettingsError("settings must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown settings field: {unknown[0]}")
        kw: dict[str, Any] = {}
        for name, value in data.items():
            kw[name] = _convert(name, value)
        return cls(**kw)


_CODES = ", ".join(SUPPORTED)


def _convert(name: str, value: Any) -> Any:
    if name == "strictness":
        try:
            return Strictness(value)
        except ValueError:
            raise SettingsError("strictness must be one of off, low, medium, high") from None
    if name == "link_policy":
        try:
            return LinkPolicy(value)
        except ValueError:
            raise SettingsError("link_policy must be one of allow, block, allowlist") from None
    if name in _LISTS:
        longest = _LISTS[name]
        if not isinstance(value, (list, tuple)) or not all(isinstance(x, str) and x.strip() for x in value):
            raise SettingsError(f"{name} must be a list of non-empty strings")
        if len(value) > MAX_LIST:
            raise SettingsError(f"{name} must have at most {MAX_LIST} entries")
        if any(len(x.strip()) > longest for x in value):
            raise SettingsError(f"each of {name} must be at most {longest} characters")
        return tuple(x.strip() for x in value)
    if name == "languages":
        if not isinstance(value, (list, tuple)) or not all(isinstance(x, str) and x in SUPPORTED for x in value):
            raise SettingsError(f"languages must be a list of language codes ({_CODES})")
        if len(set(value)) != len(value):
            raise SettingsError("languages must not repeat a language")
        return tuple(value)
    if name == "language_strictness":
        if not isinstance(value, dict):
            raise SettingsError("language_strictness must be an object of language code -> strictness")
        out = []
        for code, level in sorted(value.items()):
            if code not in SUPPORTED:
                raise SettingsError(f"language_strictness: unknown language {code!r} ({_CODES})")
            try:
                out.append((code, Strictness(level)))
            except ValueError:
                raise SettingsError("language_strictness values must be one of off, low, medium, high") from None
        return tuple(out)
    if name == "profanity":
        if not isinstance(value, bool):
            raise SettingsError("profanity must be true or false")
        return value
    if name in _INTEGERS:
        low, high = _INTEGERS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingsError(f"{name} must be an integer between {low} and {high}")
        return value
    # remaining fields are non-negative seconds (a NaN fails the comparison too)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_SECONDS:
        raise SettingsError(f"{name} must be a number of seconds between 0 and {MAX_SECONDS}")
    return float(value)


MAX_LIST = 1000
MAX_SECONDS = 86400
#: list fields and the longest entry each accepts
_LISTS = {"blocked_terms": 100, "allowed_terms": 100, "allowed_domains": 253}
#: integer fields and their (lowest, highest) accepted values
_INTEGERS = {"rate_limit_count": (1, 1000), "max_mentions": (1, 100), "max_char_run": (1, 500),
             "max_emoji": (1, 500)}
