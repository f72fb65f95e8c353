"""The WHIP endpoint (RFC 9725) as aiohttp routes the node mounts.

::

    POST    /whip/{broadcast_id}                      offer -> 201 answer, Location, ETag, Link (ICE servers)
    DELETE  /whip/{broadcast_id}/sessions/{session}   end the publish -> 200
    PATCH   /whip/{broadcast_id}/sessions/{session}   405: no trickle ICE, all candidates are in offer/answer
    OPTIONS both                                      CORS preflight, Accept-Post

Every answer carries CORS headers so a page on another origin can publish.
Errors are ``{"error": reason}`` with 400/401/404/408/409/413/415/503.  Requests
are checked cheapest first (key prefix; the whole key against the registry,
in constant time, by ``hub.check_key``; Content-Type, size, SDP) before any
peer connection or ICE agent exists, so a flood of offers with a wrong key
costs registry reads and never a session slot; a peer connection created for
a publish the hub then refuses (it went live meanwhile) is closed before the
answer goes out.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from multidict import CIMultiDict

from ingest.http_body import BodyError, read_body
from ingest.source import IngestHub, PublishRefused, redact
from ingest.whip.encoder import EncoderOptions
from ingest.whip.errors import OfferError, WhipError
from ingest.whip.ice import IceServer, validate_hosts
from ingest.whip.offer import check_offer
from ingest.whip.session import SessionOptions, WhipSession
from ingest.whip.sessions import WhipSessions

log = logging.getLogger("onair.whip")

PROTOCOL = "whip"
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, Link, ETag, Accept-Post",
}

WHIP_SESSIONS = web.AppKey("whip_sessions", WhipSessions)


@dataclass(frozen=True)
class WhipOptions:
    #: addresses gathered and advertised as ICE host candidates (empty: aioice's default, every interface)
    ice_hosts: tuple[str, ...] = ()
    #: STUN/TURN URLs, used by the node and advertised to publishers in ``Link`` headers
    ice_servers: tuple[str, ...] = ()
    max_offer_bytes: int = 64 * 1024
    max_sessions: int = 16
    connect_timeout: float = 15.0
    media_timeout: float = 10.0
    encoder: EncoderOptions = field(default_factory=EncoderOptions)


NEGOTIATION_ERRORS = (ValueError, LookupError, TypeError, InvalidAccessError, InvalidStateError, OperationError)

HubSource = Callable[[], IngestHub] | IngestHub


def _error(status: int, reason: str, **headers: str) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers={**CORS_HEADERS, **headers})


def _refusal_status(code: str) -> tuple[int, dict[str, str]]:
    if code == "bad_key":
        return 401, {"WWW-Authenticate": 'Bearer realm="whip"'}
    if code in ("already_live", "ended"):
        return 409, {}
    if code == "unsupported_codec":
        return 400, {}
    if code == "busy":
        return 503, {"Retry-After": "5"}
    return 403, {}


def bearer_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class WhipEndpoint:
    def __init__(self, hub: HubSource, options: WhipOptions, sessions: WhipSessions) -> None:
        self._hub_source = hub
        self.options = options
        self.sessions = sessions
        self._session_options = SessionOptions(
            ice_hosts=validate_hosts(options.ice_hosts),
            ice_servers=tuple(IceServer.parse(url) for url in options.ice_servers),
            connect_timeout=options.connect_timeout, media_timeout=options.media_timeout,
            encoder=options.encoder)
        self._links = [s.link_header() for s in self._session_options.ice_servers]

    def _hub(self) -> IngestHub:
        source = self._hub_source
        if hasattr(source, "open_publish"):
            return source  # type: ignore[return-value]
        return source()

    def _refuse(self, request: web.Request, status: int, reason: str, code: str, **headers: str) -> web.Response:
        log.warning("WHIP publish refused for %s from %s: %s", request.match_info.get("id"), request.remote, reason)
        try:
            self._hub().record_refusal(PROTOCOL, code)
        except Exception:  # counting must never turn a refusal into a 500
            log.exception("recording a WHIP refusal failed")
        return _error(status, reason, **headers)

    async def _read_offer(self, request: web.Request) -> str:
        limit = self.options.max_offer_bytes
        content_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/sdp":
            raise WhipError(415, "Content-Type must be application/sdp")
        try:
            raw = await read_body(request, limit, what="SDP offer")
        except BodyError as exc:
            raise WhipError(exc.status, exc.reason) from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise OfferError("invalid SDP offer: not UTF-8 text") from None

    # --- handlers -------------------------------------------------------------

    async def options_endpoint(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={
            **CORS_HEADERS, "Access-Control-Allow-Methods": "POST, OPTIONS", "Access-Control-Max-Age": "600",
            "Allow": "OPTIONS, POST", "Accept-Post": "application/sdp"})

    async def options_session(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers={
            **CORS_HEADERS, "Access-Control-Allow-Methods": "DELETE, PATCH, OPTIONS", "Access-Control-Max-Age": "600",
            "Allow": "OPTIONS, DELETE, PATCH"})

    async def post(self, request: web.Request) -> web.Response:
        broadcast_id = request.match_info["id"]
        if not _ID.fullmatch(broadcast_id):
            return self._refuse(request, 404, "unknown broadcast", "bad_request")
        key = bearer_key(request)
        if key is None:
            return self._refuse(request, 401, "missing stream key: send Authorization: Bearer <stream_key>",
                                "bad_key", **{"WWW-Authenticate": 'Bearer realm="whip"'})
        if not key.startswith(f"live_{broadcast_id}_"):
            return self._refuse(request, 401, f"stream key does not belong to broadcast {broadcast_id}",
                                "bad_key", **{"WWW-Authenticate": 'Bearer realm="whip"'})
        remote = request.remote or "?"
        try:
            await self._hub().check_key(key, protocol=PROTOCOL, remote=remote)  # counts its own refusals
        except PublishRefused as refused:
            status, headers = _refusal_status(refused.code)
            return _error(status, refused.description, **headers)
        try:
            offer = await self._read_offer(request)
            summary = check_offer(offer)
        except WhipError as exc:
            code = {408: "offer_timeout", 413: "offer_too_large", 415: "bad_content_type"}.get(exc.status, "bad_offer")
            return self._refuse(request, exc.status, exc.reason, code)
        if self.sessions.count >= self.options.max_sessions:
            return self._refuse(request, 503, "too many WHIP sessions on this node", "busy", **{"Retry-After": "5"})
        session = WhipSession(broadcast_id, key, remote, self._session_options, self.sessions.peers,
                              self.sessions.forget)
        self.sessions.add(session)
        activated = False
        try:
            try:
                answer = await session.negotiate(offer)
            except NEGOTIATION_ERRORS as exc:
                # aiortc refused what the pre-checks let through (its SDP parser raises many kinds)
                log.warning("WHIP offer for %s from %s refused by aiortc: %r", broadcast_id, remote, exc)
                return self._refuse(request, 400, f"invalid SDP offer: {exc or type(exc).__name__}", "bad_offer")
            try:
                sink = await self._hub().open_publish(key, protocol=PROTOCOL, remote=remote,
                                                      disconnect=session.hub_disconnect)
            except PublishRefused as refused:
                status, headers = _refusal_status(refused.code)
                log.warning("WHIP publish refused for %s from %s (key %s): %s", broadcast_id, remote,
                            redact(key), refused.description)
                return _error(status, refused.description, **headers)
            session.activate(sink)
            activated = True
        finally:
            if not activated:
                await session.discard()
        log.info("WHIP publish of %s from %s: session %s, video %s, audio %s", broadcast_id, remote,
                 session.id[:6], summary.video_codec, summary.audio_codec or "none")
        created: CIMultiDict[str] = CIMultiDict({**CORS_HEADERS, "Content-Type": "application/sdp",
                                                 "Location": f"/whip/{broadcast_id}/sessions/{session.id}",
                                                 "ETag": f'"{session.etag}"'})
        for link in self._links:
            created.add("Link", link)
        return web.Response(status=201, body=answer.encode(), headers=created)

    def _session_for(self, request: web.Request) -> WhipSession:
        session = self.sessions.get(request.match_info["session"])
        if session is None or session.broadcast_id != request.match_info["id"]:
            raise WhipError(404, "unknown WHIP session")
        key = bearer_key(request)
        if key is None or not secrets.compare_digest(key.encode(), session.stream_key.encode()):
            raise WhipError(401, "the session's stream key is required: send Authorization: Bearer <stream_key>")
        return session

    async def delete(self, request: web.Request) -> web.Response:
        try:
            session = self._session_for(request)
        except WhipError as exc:
            return _error(exc.status, exc.reason)
        session.end("DELETE")
        await session.wait_closed()
        return web.Response(status=200, headers=CORS_HEADERS)

    async def patch(self, request: web.Request) -> web.Response:
        try:
            self._session_for(request)
        except WhipError as exc:
            return _error(exc.status, exc.reason)
        return _error(405, "trickle ICE and ICE restarts are not supported: send all candidates in the offer "
                           "(wait for ICE gathering to complete)", Allow="OPTIONS, DELETE")


def add_whip_routes(app: web.Application, hub: HubSource, options: WhipOptions) -> None:
    """Mount the WHIP endpoint on ``app``; ``app[WHIP_SESSIONS]`` counts sessions and peer connections.

    ``hub`` may be a callable returning the hub, for nodes that create it in a
    ``cleanup_ctx``.  Open sessions are ended ("shutdown") when the app cleans
    up, before anything registered earlier (the hub) is closed.
    """
    sessions = WhipSessions()
    endpoint = WhipEndpoint(hub, options, sessions)
    app[WHIP_SESSIONS] = sessions

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        await sessions.close_all("shutdown")

    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("POST", "/whip/{id}", endpoint.post)
    app.router.add_route("OPTIONS", "/whip/{id}", endpoint.options_endpoint)
    app.router.add_route("DELETE", "/whip/{id}/sessions/{session}", endpoint.delete)
    app.router.add_route("PATCH", "/whip/{id}/sessions/{session}", endpoint.patch)
    app.router.add_route("OPTIONS", "/whip/{id}/sessions/{session}", endpoint.options_session)
