"""Signed viewer tokens: who a viewer is, for which broadcast, until when.

``vt1.<base64url JSON>.<base64url HMAC-SHA256>`` signed with the cluster secret,
so any node can check a token any node issued.  Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

PREFIX = "vt1"
DEFAULT_TTL = 24 * 3600.0


class TokenError(ValueError):
    """The token is malformed, forged, expired or for another broadcast."""


@dataclass(frozen=True)
class ViewerIdentity:
    broadcast_id: str
    viewer_id: str
    name: str
    expires: float


def new_viewer_id() -> str:
    return "v_" + secrets.token_urlsafe(9)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signed: str) -> str:
    return _b64(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def issue(secret: bytes, broadcast_id: str, viewer_id: str, name: str, ttl: float = DEFAULT_TTL,
          now: float | None = None) -> str:
    expires = (time.time() if now is None else now) + ttl
    body = _b64(json.dumps({"b": broadcast_id, "v": viewer_id, "n": name, "e": int(expires)},
                           separators=(",", ":")).encode())
    signed = f"{PREFIX}.{body}"
    return f"{signed}.{_sign(secret, signed)}"


def verify(secret: bytes, token: str, broadcast_id: str, now: float | None = None) -> ViewerIdentity:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise TokenError("viewer token is malformed")
    signed = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(secret, signed), parts[2]):
        raise TokenError("viewer token signature is invalid")
    try:
        doc = json.loads(_unb64(parts[1]))
        identity = ViewerIdentity(str(doc["b"]), str(doc["v"]), str(doc["n"]), float(doc["e"]))
    except (ValueError, KeyError, TypeError):
        raise TokenError("viewer token is malformed") from None
    if identity.broadcast_id != broadcast_id:
        raise TokenError("viewer token is for another broadcast")
    if identity.expires < (time.time() if now is None else now):
        raise TokenError("viewer token has expired")
    return identity
