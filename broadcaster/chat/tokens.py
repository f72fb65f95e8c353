"""Signed viewer tokens: who a viewer is, for which broadcast, until when.

``vt1.<base64url JSON>.<base64url HMAC-SHA256>`` signed with the cluster secret
(``broadcaster/signing.py``), so any node can check a token any node issued.
Pure functions, no I/O.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from broadcaster.signing import TokenError, seal, unseal

__all__ = ["DEFAULT_TTL", "PREFIX", "TokenError", "ViewerIdentity", "issue", "new_viewer_id", "verify"]

PREFIX = "vt1"
DEFAULT_TTL = 24 * 3600.0


@dataclass(frozen=True)
class ViewerIdentity:
    broadcast_id: str
    viewer_id: str
    name: str
    expires: float
    #: the broadcast's viewer-token epoch when issued (revoking tokens raises the broadcast's epoch)
    epoch: int = 0


def new_viewer_id() -> str:
    return "v_" + secrets.token_urlsafe(9)


def issue(secret: bytes, broadcast_id: str, viewer_id: str, name: str, ttl: float = DEFAULT_TTL,
          now: float | None = None, epoch: int = 0) -> str:
    expires = (time.time() if now is None else now) + ttl
    doc: dict[str, Any] = {"b": broadcast_id, "v": viewer_id, "n": name, "e": int(expires)}
    if epoch:
        doc["p"] = epoch
    return seal(secret, PREFIX, doc)


def verify(secret: bytes, token: str, broadcast_id: str, now: float | None = None) -> ViewerIdentity:
    doc = unseal(secret, PREFIX, token, "viewer token")
    try:
        identity = ViewerIdentity(str(doc["b"]), str(doc["v"]), str(doc["n"]), float(doc["e"]), int(doc.get("p", 0)))
    except (ValueError, KeyError, TypeError):
        raise TokenError("viewer token is malformed") from None
    if identity.broadcast_id != broadcast_id:
        raise TokenError("viewer token is for another broadcast")
    if identity.expires < (time.time() if now is None else now):
        raise TokenError("viewer token has expired")
    return identity
