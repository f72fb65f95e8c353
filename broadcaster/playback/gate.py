"""The node's playback gate: what the HLS origin, the public API and the chat ask about a broadcast.

It holds the cached access state (``access.py``), the keys derived from the cluster secret and the
playlists it has rewritten: a media playlist is signed once per version, bucket and epoch and the
same bytes go to every granted viewer; a master playlist is cut once per version and each viewer's
grant put in.  The decisions themselves are ``grants.py``'s; the text work ``rewrite.py``'s.
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from broadcaster.playback import rewrite
from broadcaster.playback.access import PlaybackAccess, Unavailable
from broadcaster.playback.grants import (GRANT_PARAM, SIGNATURE_PARAM, AccessState, Grant, GrantReader,
                                         ObjectSigner, Refused, admit, authorize_object, authorize_playlist,
                                         grant_key, issue_grant, signature_expiry)

if TYPE_CHECKING:  # (the chat package imports this module)
    from broadcaster.chat.tokens import ViewerIdentity

#: rewritten playlists and signers kept (a few per live rendition); past it the caches start over
_MAX_CACHED = 4096


@dataclass(frozen=True, slots=True)
class _Signed:
    source: bytes
    expires: int
    epoch: int
    body: bytes


class PlaybackGate:
    def __init__(self, access: PlaybackAccess, secret: Callable[[], bytes],
                 epoch: Callable[[str], Awaitable[int]]) -> None:
        self.access = access
        self._secret = secret
        self._epoch = epoch
        self._reader: tuple[bytes, GrantReader] | None = None
        self._signers: dict[tuple[str, int], ObjectSigner] = {}
        self._media: dict[tuple[str, str], _Signed] = {}
        self._masters: dict[tuple[str, str], tuple[bytes, tuple[str, ...]]] = {}

    # --- state and keys ----------------------------------------------------------------
    async def state(self, broadcast_id: str) -> AccessState:
        return await self.access.state(broadcast_id)

    async def current_epoch(self, broadcast_id: str) -> int:
        """The broadcast's viewer-token epoch from the store (not the cache): what a new token carries."""
        return await self._epoch(broadcast_id)

    def _grants(self) -> GrantReader:
        secret = self._secret()
        if self._reader is None or self._reader[0] != secret:
            self._reader = (secret, GrantReader(grant_key(secret)))
        return self._reader[1]

    def _signer(self, broadcast_id: str, epoch: int) -> ObjectSigner:
        signer = self._signers.get((broadcast_id, epoch))
        if signer is None:
            if len(self._signers) >= _MAX_CACHED:
                self._signers.clear()
            signer = self._signers[(broadcast_id, epoch)] = ObjectSigner(self._secret(), broadcast_id, epoch)
        return signer

    def issue_grant(self, identity: ViewerIdentity) -> str:
        """The playback grant of a viewer token's identity."""
        return issue_grant(self._secret(), identity.broadcast_id, identity.viewer_id, identity.epoch,
                           identity.expires)

    # --- decisions ---------------------------------------------------------------------
    def check_playlist(self, state: AccessState, broadcast_id: str, query: Mapping[str, str], now: float) -> Grant:
        return authorize_playlist(self._grants(), state, broadcast_id, query, now)

    def check_object(self, state: AccessState, broadcast_id: str, rel: str, query: Mapping[str, str],
                     now: float) -> Grant | None:
        return authorize_object(self._grants(), self._signer(broadcast_id, state.epoch), state, broadcast_id,
                                rel, query, now)

    async def admit_viewer(self, identity: ViewerIdentity) -> str | None:
        """Why a restricted broadcast's chat refuses this (verified) viewer token, or None."""
        try:
            state = await self.access.state(identity.broadcast_id)
        except Unavailable:
            return "the chat is unavailable, try again"
        try:
            admit(state, identity.viewer_id, identity.epoch, what="viewer token")
        except Refused as exc:
            return exc.reason
        return None

    # --- what a granted viewer gets ------------------------------------------------------
    def playlist(self, state: AccessState, broadcast_id: str, rel: str, body: bytes, grant: str,
                 now: float) -> bytes:
        """The playlist at ``rel`` as this viewer gets it: a master with ``grant`` on its playlist URIs,
        a media playlist with its objects signed."""
        if b"#EXT-X-STREAM-INF" in body:
            return self._master(broadcast_id, rel, body, grant)
        return self._signed_media(state, broadcast_id, rel, body, now)

    def _master(self, broadcast_id: str, rel: str, body: bytes, grant: str) -> bytes:
        cached = self._masters.get((broadcast_id, rel))
        if cached is None or cached[0] != body:
            if len(self._masters) >= _MAX_CACHED:
                self._masters.clear()
            cached = (body, rewrite.master_template(body.decode(), GRANT_PARAM))
            self._masters[(broadcast_id, rel)] = cached
        return rewrite.fill(cached[1], grant).encode()

    def _signed_media(self, state: AccessState, broadcast_id: str, rel: str, body: bytes, now: float) -> bytes:
        expires = signature_expiry(now, vod=b"#EXT-X-ENDLIST" in body)
        cached = self._media.get((broadcast_id, rel))
        if cached is not None and cached.expires == expires and cached.epoch == state.epoch and cached.source == body:
            return cached.body
        signer = self._signer(broadcast_id, state.epoch)
        folder = posixpath.dirname(rel)

        def signature(uri: str) -> str:
            return signer.sign(posixpath.normpath(posixpath.join(folder, uri)), expires)

        signed = rewrite.sign_objects(body.decode(), signature, SIGNATURE_PARAM).encode()
        if len(self._media) >= _MAX_CACHED:
            self._media.clear()
        self._media[(broadcast_id, rel)] = _Signed(body, expires, state.epoch, signed)
        return signed

    @staticmethod
    def object_cache_control(query: Mapping[str, str], now: float) -> str:
        """An object fetched with a signature may be shared by caches until the signature expires;
        one fetched with a viewer's grant is that viewer's."""
        signature = query.get(SIGNATURE_PARAM)
        if signature:
            return f"public, max-age={max(0, int(signature.partition('.')[0]) - int(now))}, immutable"
        return "private, max-age=86400, immutable"


PLAYBACK = web.AppKey("playback", PlaybackGate)
