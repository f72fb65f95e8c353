"""Who a chat ``hello`` is: a named identity from a token, or an anonymous one kept across reconnects.

``identify`` is pure (no I/O): given the hello, the broadcast and the cluster
secret it returns an ``Identity`` or raises ``IdentityRefused`` with the
error code and close code the endpoint answers with (docs/chat-protocol.md):

- a named token (``vt1``, from the host's API or the console): id, name and
  role as signed; the only kind a restricted broadcast accepts;
- an anonymous token (``va1``) on a public broadcast: its id, the name the
  hello gives, and the token re-issued with a fresh expiry;
- no token on a public broadcast: a new anonymous identity (its token goes
  back in ``history.you.token``; the watch page keeps it and presents it on
  every later hello, so bans and limits follow the viewer).
"""

from __future__ import annotations

from dataclasses import dataclass

from broadcaster.chat import protocol as proto
from broadcaster.chat.tokens import TokenError, ViewerIdentity, issue_anonymous, new_anonymous_id, verify_any

DEFAULT_NAME = "guest"


class IdentityRefused(Exception):
    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


@dataclass(frozen=True)
class Identity:
    viewer_id: str
    name: str
    #: "viewer", or a role the host gave ("host", "moderator"): shown on the identity's comments
    role: str = "viewer"
    #: the anonymous identity's token, handed back in ``history.you`` (None for a named identity)
    token: str | None = None
    #: a named identity's verified token (its epoch: a restricted broadcast may have revoked it)
    signed: ViewerIdentity | None = None

    @property
    def verified_role(self) -> bool:
        return self.role != "viewer"


def identify(secret: bytes, hello: proto.Hello, broadcast_id: str, restricted: bool,
             now: float | None = None) -> Identity:
    if hello.token is None:
        if restricted:
            raise IdentityRefused("unauthorized", "this broadcast requires a viewer token", proto.CLOSE_UNAUTHORIZED)
        viewer_id = new_anonymous_id()
        return Identity(viewer_id, hello.name or DEFAULT_NAME, token=issue_anonymous(secret, broadcast_id, viewer_id,
                                                                                       now=now))
    try:
        signed = verify_any(secret, hello.token, broadcast_id, now=now)
    except TokenError as exc:
        raise IdentityRefused("unauthorized", str(exc), proto.CLOSE_UNAUTHORIZED) from None
    if not signed.anonymous:
        return Identity(signed.viewer_id, signed.name, signed.role, signed=signed)
    if restricted:
        raise IdentityRefused("unauthorized", "this broadcast requires a viewer token from its host",
                              proto.CLOSE_UNAUTHORIZED)
    return Identity(signed.viewer_id, hello.name or DEFAULT_NAME,
                    token=issue_anonymous(secret, broadcast_id, signed.viewer_id, now=now))
