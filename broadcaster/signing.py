"""The node's one signer: ``<prefix>.<base64url JSON>.<base64url HMAC-SHA256>`` documents and short
MACs, under keys derived from the cluster secret, one per purpose.  Viewer tokens
(``chat/tokens.py``) and playback grants and object signatures (``playback/grants.py``) are made
here.  Pure functions, no I/O; signatures are compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class TokenError(ValueError):
    """The token is malformed, forged, expired or for another broadcast."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mac(key: bytes, message: str, size: int = 32) -> str:
    """base64url of HMAC-SHA256(key, message), truncated to ``size`` bytes."""
    return b64(hmac.new(key, message.encode(), hashlib.sha256).digest()[:size])


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose only, derived from the cluster secret (a token of one kind never verifies as another)."""
    return hmac.new(secret, b"onair key: " + purpose.encode(), hashlib.sha256).digest()


def seal(key: bytes, prefix: str, doc: dict[str, Any]) -> str:
    """``<prefix>.<base64url compact JSON>.<base64url HMAC-SHA256>``."""
    signed = f"{prefix}.{b64(json.dumps(doc, separators=(',', ':')).encode())}"
    return f"{signed}.{mac(key, signed)}"


def unseal(key: bytes, prefix: str, token: str, what: str) -> dict[str, Any]:
    """The document of a token ``seal`` made with ``key``; ``TokenError`` ("<what> is malformed" /
    "<what> signature is invalid") otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != prefix:
        raise TokenError(f"{what} is malformed")
    if not hmac.compare_digest(mac(key, f"{parts[0]}.{parts[1]}"), parts[2]):
        raise TokenError(f"{what} signature is invalid")
    try:
        doc = json.loads(_unb64(parts[1]))
    except ValueError:
        raise TokenError(f"{what} is malformed") from None
    if not isinstance(doc, dict):
        raise TokenError(f"{what} is malformed")
    return doc
