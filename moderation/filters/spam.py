"""Spam: per-viewer rate limit, duplicates, link policy, character/emoji flooding, mention spam."""

from __future__ import annotations

import re
import unicodedata
from collections import deque

from ..bounded import TTLCache
from ..context import CommentContext
from ..links import find_links, link_host
from ..normalize import squeeze
from ..settings import LinkPolicy, ModerationSettings
from ..verdict import Action, FilterResult

__all__ = ["MAX_REMEMBERED_TEXTS", "SpamFilter", "count_emoji", "duplicate_signature"]

_MENTION_RE = re.compile(r"(?<![\w@])@\w{2,}")
MAX_REMEMBERED_TEXTS = 8  # per viewer, for duplicate detection


def count_emoji(text: str) -> int:
    """Pictographic symbols in `text` (modifiers and joiners not counted)."""
    n = 0
    for ch in text:
        cp = ord(ch)
        if 0x1F3FB <= cp <= 0x1F3FF or ch in "\u200d\ufe0f":
            continue
        if cp >= 0x1F000 or unicodedata.category(ch) == "So":
            n += 1
    return n


def duplicate_signature(ctx: CommentContext) -> str:
    """What duplicates compare: the normalised, squeezed text ("hiii" == "hi")."""
    return squeeze(" ".join(ctx.normalized.text.split()))


def _longest_run(text: str) -> int:
    best = run = 0
    prev = ""
    for ch in text:
        if ch.isspace():
            prev, run = "", 0
            continue
        run = run + 1 if ch == prev else 1
        prev = ch
        best = max(best, run)
    return best


def _domain_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    for d in allowed:
        d = d.lower().lstrip(".")
        if host == d or host.endswith("." + d):
            return True
    return False


class SpamFilter:
    name = "spam"

    def __init__(self, max_viewers: int = 100_000) -> None:
        self._rate: TTLCache[tuple[str, str], deque[float]] = TTLCache(max_viewers)
        self._recent: TTLCache[tuple[str, str], dict[str, float]] = TTLCache(max_viewers)

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None:
        assert ctx.now is not None
        now = ctx.now
        key = (ctx.broadcast_id, ctx.viewer_id)

        # rate limit: every attempt counts, so hammering keeps the viewer limited
        times = self._rate.get(key, now)
        if times is None:
            times = deque(maxlen=settings.rate_limit_count + 1)
        while times and now - times[0] >= settings.rate_limit_window:
            times.popleft()
        limited = len(times) >= settings.rate_limit_count
        times.append(now)
        self._rate.set(key, times, now + settings.rate_limit_window)
        if limited:
            return FilterResult(Action.REJECT, "rate_limited")

        sig = duplicate_signature(ctx)
        recent = self._recent.get(key, now) or {}
        recent = {t: at for t, at in recent.items() if now - at < settings.duplicate_window}
        dup = sig in recent
        recent[sig] = now
        if len(recent) > MAX_REMEMBERED_TEXTS:
            oldest = min(recent, key=recent.__getitem__)
            del recent[oldest]
        self._recent.set(key, recent, now + settings.duplicate_window)
        if dup and sig:
            return FilterResult(Action.REJECT, "duplicate")

        links = find_links(ctx.text)
        if links:
            if settings.link_policy is LinkPolicy.BLOCK:
                return FilterResult(Action.REJECT, "link_blocked")
            if settings.link_policy is LinkPolicy.ALLOWLIST:
                for _, _, link in links:
                    if not _domain_allowed(link_host(link), settings.allowed_domains):
                        return FilterResult(Action.REJECT, "link_not_allowed")

        if _longest_run(ctx.text) > settings.max_char_run:
            return FilterResult(Action.REJECT, "char_flood")
        if count_emoji(ctx.text) > settings.max_emoji:
            return FilterResult(Action.REJECT, "emoji_flood")
        if len(_MENTION_RE.findall(ctx.text)) > settings.max_mentions:
            return FilterResult(Action.REJECT, "mention_spam")
        return None
