"""Signed viewer tokens: who a viewer is, for which broadcast, until when.

Two kinds, both ``<prefix>.<base64url JSON>.<base64url HMAC-SHA256>`` signed
with the cluster secret (``broadcaster/signing.py``), so any node can check a
token any node issued:

- ``vt1``: a *named* identity the host issues (``POST .../viewer-tokens``) or
  the console asks for (role ``host``/``moderator``): name, role and the
  broadcast's viewer-token epoch are part of what is signed.  Restricted
  broadcasts accept only these.
- ``va1``: an *anonymous* identity the chat mints for a viewer of a public
  broadcast who has none (handed back in ``history.you.token``): only an id,
  so bans and limits stay with it across reconnects and nodes; its name is
  whatever the viewer says in ``hello``.  Signed under a key of its own
  (``signing.derive_key``), and the prefix is signed too, so one kind never
  passes for the other.

Pure functions, no I/O.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from broadcaster.signing import TokenError, derive_key, seal, unseal

__all__ = ["ANONYMOUS_PREFIX", "DEFAULT_TTL", "PREFIX", "ROLES", "TokenError", "ViewerIdentity", "issue",
           "issue_anonymous", "new_anonymous_id", "new_viewer_id", "verify", "verify_any"]

PREFIX = "vt1"
ANONYMOUS_PREFIX = "va1"
DEFAULT_TTL = 24 * 3600.0
#: an anonymous identity is re-issued with a fresh expiry on every hello: it lapses after this long unused
ANONYMOUS_TTL = 30 * 24 * 3600.0
ROLES = ("viewer", "host", "moderator")


@dataclass(frozen=True)
class ViewerIdentity:
    broadcast_id: str
    viewer_id: str
    #: the signed name; "" for an anonymous identity (the viewer names itself)
    name: str
    expires: float
    #: the broadcast's viewer-token epoch when issued (revoking tokens raises the broadcast's epoch)
    epoch: int = 0
    role: str = "viewer"
    anonymous: bool = False


def new_viewer_id() -> str:
    return "v_" + secrets.token_urlsafe(9)


def new_anonymous_id() -> str:
    # 96 random bits: not guessable, so nobody can take over another viewer's identity
    return "a_" + secrets.token_urlsafe(12)


def _anonymous_key(secret: bytes) -> bytes:
    return derive_key(secret, "anonymous viewer identity")


def issue(secret: bytes, broadcast_id: str, viewer_id: str, name: str, ttl: float = DEFAULT_TTL,
          now: float | None = None, epoch: int = 0, role: str = "viewer") -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    expires = (time.time() if now is None else now) + ttl
    doc: dict[str, Any] = {"b": broadcast_id, "v": viewer_id, "n": name, "e": int(expires)}
    if epoch:
        doc["p"] = epoch
    if role != "viewer":
        doc["r"] = role
    return seal(secret, PREFIX, doc)


def issue_anonymous(secret: bytes, broadcast_id: str, viewer_id: str, ttl: float = ANONYMOUS_TTL,
                    now: float | None = None) -> str:
    expires = (time.time() if now is None else now) + ttl
    return seal(_anonymous_key(secret), ANONYMOUS_PREFIX, {"b": broadcast_id, "v": viewer_id, "e": int(expires)})


def verify(secret: bytes, token: str, broadcast_id: str, now: float | None = None) -> ViewerIdentity:
    """A named (``vt1``) token; an anonymous one is refused here."""
    doc = unseal(secret, PREFIX, token, "viewer token")
    try:
        role = str(doc.get("r", "viewer"))
        identity = ViewerIdentity(str(doc["b"]), str(doc["v"]), str(doc["n"]), float(doc["e"]), int(doc.get("p", 0)),
                                  role)
    except (ValueError, KeyError, TypeError):
        raise TokenError("viewer token is malformed") from None
    if role not in ROLES:
        raise TokenError("viewer token is malformed")
    return _current(identity, broadcast_id, now)


def verify_any(secret: bytes, token: str, broadcast_id: str, now: float | None = None) -> ViewerIdentity:
    """A named or an anonymous token (``identity.anonymous`` says which)."""
    if not token.startswith(ANONYMOUS_PREFIX + "."):
        return verify(secret, token, broadcast_id, now)
    doc = unseal(_anonymous_key(secret), ANONYMOUS_PREFIX, token, "viewer token")
    try:
        identity = ViewerIdentity(str(doc["b"]), str(doc["v"]), "", float(doc["e"]), anonymous=True)
    except (ValueError, KeyError, TypeError):
        raise TokenError("viewer token is malformed") from None
    return _current(identity, broadcast_id, now)


def _current(identity: ViewerIdentity, broadcast_id: str, now: float | None) -> ViewerIdentity:
    if identity.broadcast_id != broadcast_id:
        raise TokenError("viewer token is for another broadcast")
    if identity.expires < (time.time() if now is None else now):
        raise TokenError("viewer token has expired")
    return identity
