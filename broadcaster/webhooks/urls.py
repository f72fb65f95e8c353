"""Checking a webhook URL before it is stored: exact reasons, ``ValueError`` for each."""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL = 2048


def validate_url(raw: object) -> str:
    """``raw`` as a webhook URL (http or https, a host, no credentials, no fragment), or ValueError."""
    if not isinstance(raw, str) or not raw:
        raise ValueError("'url' is required and must be a string")
    if len(raw) > MAX_URL:
        raise ValueError(f"'url' is longer than {MAX_URL} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in raw):
        raise ValueError("'url' must not contain spaces or control characters")
    try:
        parts = urlsplit(raw)
        port = parts.port  # raises for a port that is not a number or out of range
    except ValueError as exc:
        raise ValueError(f"'url' is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("'url' must use the http or https scheme")
    if not parts.hostname:
        raise ValueError("'url' has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("'url' must not carry credentials (user:password@)")
    if parts.fragment or raw.endswith("#"):
        raise ValueError("'url' must not have a fragment")
    if port == 0:
        raise ValueError("'url' has port 0")
    return raw
