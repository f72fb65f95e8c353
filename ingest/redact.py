"""Secrets as they may appear in logs: a short prefix at most, never the whole."""

from __future__ import annotations


def redact(secret: str) -> str:
    """A stream key or token as it may appear in logs: a short prefix only."""
    if len(secret) <= 4:
        return "****"
    return secret[:4] + "…"
