"""Who may fetch a restricted broadcast's HLS: playback grants and object signatures.  Pure: no I/O,
the time is an argument.

Two credentials, both signed with keys derived from the cluster secret (``broadcaster/signing.py``,
which signs the viewer tokens too):

- A **grant** ``pg1.<payload>.<mac>`` is one viewer's: broadcast, viewer id, viewer-token epoch and
  expiry, copied from the viewer token it is issued with.  It rides on playlist URLs (``?grant=``) and is
  checked on every playlist request against the broadcast's current epoch and ban list.
- An **object signature** ``?s=<expires>.<mac>`` is the broadcast's, not a viewer's: the MAC of one
  object's path and expiry under a key of (broadcast, epoch).  The origin writes it into every object
  URI of the playlists it serves a granted viewer (init sections, parts, preload hints, segments), with
  an expiry rounded up to a time bucket, so every viewer asks for the same URL during a bucket and an
  HTTP cache keyed on the full URL keeps one copy of each object per bucket.

See docs/playback-auth.md for the design, its threat model and trade-offs.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from broadcaster.signing import TokenError, derive_key, mac, seal, unseal

GRANT_PREFIX = "pg1"
#: query parameters: a viewer's grant (playlists; accepted on objects too) and an object signature
GRANT_PARAM = "grant"
SIGNATURE_PARAM = "s"
#: object signatures expire at the end of the bucket after the one they were made in: a live object URI
#: is valid 60-120 s after the playlist named it; a replay's, 6-12 h (players load a VOD playlist once)
LIVE_BUCKET = 60
VOD_BUCKET = 6 * 3600
#: bytes of HMAC kept in an object signature (128 bits)
_OBJECT_MAC_BYTES = 16


class Refused(Exception):
    """The request may not have this object: ``status`` (401 no credential, 403 a bad one) and why.

    ``issued_for_it``: the credential is genuine and was issued for this broadcast (expired, revoked,
    banned): saying so tells its holder nothing they did not know.  Any other refusal is the same
    for a restricted broadcast and for an id that does not exist.
    """

    def __init__(self, status: int, reason: str, issued_for_it: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.issued_for_it = issued_for_it


NO_GRANT = Refused(401, "a playback grant is required")


@dataclass(frozen=True, slots=True)
class Grant:
    broadcast_id: str
    viewer_id: str
    epoch: int
    expires: float


@dataclass(frozen=True, slots=True)
class AccessState:
    """What gates a broadcast's playback on this node.  ``gated`` is False only for a broadcast the
    registry knows as public; a restricted broadcast and an unknown id are gated alike, so an
    unknown id is answered exactly as a restricted broadcast is to a request without a grant."""

    gated: bool
    epoch: int = 0
    banned: frozenset[str] = frozenset()


PUBLIC = AccessState(gated=False)


def grant_key(secret: bytes) -> bytes:
    return derive_key(secret, "playback grant")


def issue_grant(secret: bytes, broadcast_id: str, viewer_id: str, epoch: int, expires: float) -> str:
    """The playback grant derived from a viewer token: the token's broadcast, viewer, epoch and expiry."""
    return seal(grant_key(secret), GRANT_PREFIX, {"b": broadcast_id, "v": viewer_id, "p": epoch, "e": int(expires)})


def open_grant(key: bytes, text: str) -> Grant:
    """The grant ``text`` carries if its signature is genuine; else ``Refused`` (403)."""
    try:
        doc = unseal(key, GRANT_PREFIX, text, "playback grant")
        return Grant(str(doc["b"]), str(doc["v"]), int(doc["p"]), float(doc["e"]))
    except TokenError as exc:
        raise Refused(403, str(exc)) from None
    except (KeyError, TypeError, ValueError):
        raise Refused(403, "playback grant is malformed") from None


def check_grant(grant: Grant, broadcast_id: str, now: float) -> Grant:
    """``grant`` if it is for ``broadcast_id`` and unexpired; else ``Refused`` (403)."""
    if grant.broadcast_id != broadcast_id:
        raise Refused(403, "playback grant is for another broadcast")
    if grant.expires < now:
        raise Refused(403, "playback grant has expired", issued_for_it=True)
    return grant


def read_grant(key: bytes, text: str, broadcast_id: str, now: float) -> Grant:
    """The grant ``text`` carries if it is genuine, for ``broadcast_id`` and unexpired; else ``Refused`` (403)."""
    return check_grant(open_grant(key, text), broadcast_id, now)


class GrantReader:
    """``open_grant`` under one key, remembering the grants it opened: a player presents the same grant on
    every playlist reload, and a genuine signature stays genuine (expiry, epoch and bans are checked on
    every request all the same).  Bounded: past ``max_entries`` it starts over."""

    __slots__ = ("key", "_opened", "_max")

    def __init__(self, key: bytes, max_entries: int = 10_000) -> None:
        self.key = key
        self._opened: dict[str, Grant] = {}
        self._max = max_entries

    def open(self, text: str) -> Grant:
        grant = self._opened.get(text)
        if grant is None:
            grant = open_grant(self.key, text)
            if len(self._opened) >= self._max:
                self._opened.clear()
            self._opened[text] = grant
        return grant


def admit(state: AccessState, viewer_id: str, epoch: int, what: str = "playback grant") -> None:
    """``Refused`` (403) if the broadcast's tokens were revoked since the credential was issued (its
    ``epoch``), or if its viewer is banned."""
    if epoch != state.epoch:
        raise Refused(403, f"{what} was revoked", issued_for_it=True)
    if viewer_id in state.banned:
        raise Refused(403, "this viewer is banned from the broadcast", issued_for_it=True)


def signature_expiry(now: float, vod: bool) -> int:
    """The expiry written into object URIs now: the end of the next bucket (the same for everyone
    during a bucket, so their URLs are the same)."""
    bucket = VOD_BUCKET if vod else LIVE_BUCKET
    return (int(now) // bucket + 2) * bucket


class ObjectSigner:
    """Signatures of a broadcast's objects for one epoch (a new epoch voids every earlier one)."""

    __slots__ = ("_key",)

    def __init__(self, secret: bytes, broadcast_id: str, epoch: int) -> None:
        self._key = derive_key(secret, f"hls objects|{broadcast_id}|{epoch}")

    def sign(self, rel: str, expires: int) -> str:
        """The ``s`` value for the object at ``rel`` (its path under the broadcast's HLS directory)."""
        return f"{expires}.{mac(self._key, f'{rel}|{expires}', _OBJECT_MAC_BYTES)}"

    def check(self, rel: str, value: str, now: float) -> None:
        expires, dot, given = value.partition(".")
        if not dot or not expires.isdigit() or len(expires) > 12:
            raise Refused(403, "object signature is malformed")
        if not hmac.compare_digest(mac(self._key, f"{rel}|{expires}", _OBJECT_MAC_BYTES), given):
            raise Refused(403, "object signature is invalid")
        if int(expires) < now:
            raise Refused(403, "object signature has expired")


def authorize_playlist(reader: GrantReader, state: AccessState, broadcast_id: str, query: Mapping[str, str],
                       now: float) -> Grant:
    """A gated playlist request: the viewer's grant, checked now against the broadcast's state."""
    text = query.get(GRANT_PARAM)
    if not text:
        raise NO_GRANT
    grant = check_grant(reader.open(text), broadcast_id, now)
    admit(state, grant.viewer_id, grant.epoch)
    return grant


def authorize_object(reader: GrantReader, signer: ObjectSigner, state: AccessState, broadcast_id: str, rel: str,
                     query: Mapping[str, str], now: float) -> Grant | None:
    """A gated object request: a valid signature of this object (None), or else a viewer's grant."""
    signature = query.get(SIGNATURE_PARAM)
    if signature:
        signer.check(rel, signature, now)
        return None
    return authorize_playlist(reader, state, broadcast_id, query, now)
