"""The ``/ws/{broadcast_id}`` endpoint: one task per socket reading client messages.

Outgoing bytes never go through here: the relay writes pre-framed batches to
the transport.  This module admits the socket (per-address quotas,
``quotas.py``), establishes who the hello is (``identity.py``; reserved names,
``names.py``; bans, ``bans.py``), parses every frame with
``protocol.parse_client_message`` and enforces the limits (close codes in
docs/chat-protocol.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from broadcaster.bus import BusUnavailable
from broadcaster.chat import protocol as proto
from broadcaster.chat.bans import Refused
from broadcaster.chat.identity import IdentityRefused, identify
from broadcaster.chat.names import ReservedNames
from broadcaster.chat.quotas import AddressState, ChatQuotas, IdentityState, QuotaExceeded, address_key
from broadcaster.chat.relay import Abusive, ChatRelay, Viewer
from broadcaster.chat.tokens import ViewerIdentity
from broadcaster.keys import STORE
from broadcaster.registry import Visibility

log = logging.getLogger("onair.chat.ws")

#: seconds a broadcast's existence/visibility is cached per node
LOOKUP_TTL = 5.0
#: refused messages before a hello after which the socket is closed (1008)
MAX_BAD_BEFORE_HELLO = 20


class ChatEndpoint:
    def __init__(self, relay: ChatRelay, names: ReservedNames | None = None,
                 admit: Callable[[ViewerIdentity], Awaitable[str | None]] | None = None) -> None:
        self.relay = relay
        #: on a restricted broadcast, why a verified token is refused (revoked, banned), or None
        self.admit = admit
        self.quotas = ChatQuotas(relay.settings.address_limits, relay.settings)
        self.names = names or ReservedNames()
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        # broadcast id -> (visibility or None if unknown, expiry): a join storm of
        # thousands of viewers costs one registry read, not thousands
        self._lookups: dict[str, tuple[asyncio.Future[Visibility | None], float]] = {}

    async def visibility(self, app: web.Application, broadcast_id: str) -> Visibility | None:
        now = time.monotonic()
        cached = self._lookups.get(broadcast_id)
        if cached is not None and cached[1] > now:
            return await asyncio.shield(cached[0])
        if len(self._lookups) > 10_000:
            self._lookups = {k: v for k, v in self._lookups.items() if v[1] > now}
        future: asyncio.Future[Visibility | None] = asyncio.get_running_loop().create_future()
        self._lookups[broadcast_id] = (future, now + LOOKUP_TTL)
        try:
            broadcast = await app[STORE].get(broadcast_id)
        except BaseException as exc:
            self._lookups.pop(broadcast_id, None)
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it themselves
            raise
        future.set_result(broadcast.visibility if broadcast is not None else None)
        return future.result()

    async def close_all(self) -> None:
        """GOING_AWAY to every socket still open (also those before their hello)."""
        sockets = [ws for ws in self.sockets if not ws.closed]
        if sockets:
            await asyncio.wait([asyncio.create_task(self.relay._close_ws(ws, proto.CLOSE_GOING_AWAY, "server shutdown"))
                                for ws in sockets], timeout=3)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        broadcast_id = request.match_info["broadcast_id"]
        ws = web.WebSocketResponse(max_msg_size=proto.MAX_FRAME, compress=False,
                                   heartbeat=self.relay.settings.heartbeat)
        await ws.prepare(request)
        self.sockets.add(ws)
        transport = request.transport
        viewer: Viewer | None = None
        slot: AddressState | None = None
        held: IdentityState | None = None
        remote = request.remote or ""
        try:
            if transport is None:
                return ws
            try:
                slot = self.quotas.connect(remote)
            except QuotaExceeded as exc:
                log.info("chat join on %s refused: %s", broadcast_id, exc.code)
                await self._fail(ws, exc.code, exc.message, proto.CLOSE_QUOTA)
                return ws
            try:
                visibility = await self.visibility(request.app, broadcast_id)
            except Exception as exc:  # the registry (Redis) is unreachable
                log.warning("chat join on %s: registry unavailable: %s", broadcast_id, exc)
                await self._fail(ws, "unavailable", "the chat is unavailable, try again", proto.CLOSE_GOING_AWAY)
                return ws
            if visibility is None:
                await self._fail(ws, "not_found", f"no broadcast {broadcast_id[:40]!r}", proto.CLOSE_NOT_FOUND)
                return ws
            joined = await self._hello(ws, transport, broadcast_id, visibility, remote, slot)
            if joined is None:
                return ws
            viewer, held = joined
            await self._serve(ws, viewer)
        finally:
            if viewer is not None:
                self.relay.leave(viewer)
            if held is not None:
                self.quotas.leave(held)
            if slot is not None:
                self.quotas.disconnect(slot)
            self.sockets.discard(ws)
        return ws

    async def _fail(self, ws: web.WebSocketResponse, code: str, message: str, close_code: int) -> None:
        self.relay.metrics.protocol_errors.labels(code).inc()
        if not ws.closed:
            await ws.send_str(proto.error_event(code, message).decode())
            await ws.close(code=close_code, message=code.encode())

    async def _hello(self, ws: web.WebSocketResponse, transport: asyncio.Transport, broadcast_id: str,
                     visibility: Visibility, remote: str,
                     slot: AddressState) -> tuple[Viewer, IdentityState] | None:
        refused = 0
        while True:
            if refused >= MAX_BAD_BEFORE_HELLO:
                await self._fail(ws, "hello_required", "too many messages without a hello", proto.CLOSE_POLICY)
                return None
            try:
                msg = await ws.receive(timeout=self.relay.settings.hello_timeout)
            except asyncio.TimeoutError:
                await self._fail(ws, "hello_timeout", "no hello in time", proto.CLOSE_POLICY)
                return None
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return None
            if msg.type is WSMsgType.BINARY:
                await self._fail(ws, "binary", "binary frames are not supported", proto.CLOSE_UNSUPPORTED)
                return None
            try:
                message = proto.parse_client_message(msg.data)
            except proto.ProtocolError as exc:
                self.relay.metrics.protocol_errors.labels(exc.code).inc()
                log.info("chat %s: bad message before hello: %s", broadcast_id, exc.message)
                await ws.send_str(proto.error_event(exc.code, exc.message).decode())
                refused += 1
                continue
            if not isinstance(message, proto.Hello):
                refused += 1
                await ws.send_str(proto.error_event("hello_required", "send a hello first").decode())
                continue
            try:
                identity = identify(self.relay.secret, message, broadcast_id, visibility is Visibility.RESTRICTED)
            except IdentityRefused as exc:
                log.info("chat %s: hello refused: %s", broadcast_id, exc.message)
                await self._fail(ws, exc.code, exc.message, exc.close_code)
                return None
            if visibility is Visibility.RESTRICTED and self.admit is not None and identity.signed is not None:
                refusal = await self.admit(identity.signed)
                if refusal is not None:
                    log.info("chat %s: viewer %s refused: %s", broadcast_id, identity.viewer_id, refusal)
                    await self._fail(ws, "unauthorized", refusal, proto.CLOSE_UNAUTHORIZED)
                    return None
            if not identity.verified_role and await self.names.is_reserved(broadcast_id, identity.name):
                refused += 1
                await ws.send_str(proto.error_event("name_reserved", _reserved(identity.name)).decode())
                continue
            break
        address = address_key(self.relay.secret, broadcast_id, remote)
        held, limits = self.quotas.join(broadcast_id, identity.viewer_id, slot)
        viewer = self.relay.new_viewer(ws, transport, broadcast_id, identity, limits, address)
        try:
            await self.relay.join(viewer, message.since, identity.token)
        except Refused as exc:
            self.quotas.leave(held)
            log.info("chat %s: viewer %s refused: banned", broadcast_id, identity.viewer_id)
            await self._fail(ws, "banned", str(exc), proto.CLOSE_BANNED)
            return None
        except BusUnavailable:
            self.quotas.leave(held)
            await self._fail(ws, "unavailable", "the chat is unavailable, try again", proto.CLOSE_GOING_AWAY)
            return None
        except BaseException:
            self.quotas.leave(held)
            raise
        return viewer, held

    async def _serve(self, ws: web.WebSocketResponse, viewer: Viewer) -> None:
        relay = self.relay
        async for msg in ws:
            if viewer.closed:
                break
            if msg.type is WSMsgType.BINARY:
                relay.metrics.protocol_errors.labels("binary").inc()
                log.info("chat %s: viewer %s sent a binary frame; closing 1003", viewer.broadcast_id, viewer.viewer_id)
                relay.send(viewer, proto.error_event("binary", "binary frames are not supported"))
                await ws.close(code=proto.CLOSE_UNSUPPORTED, message=b"binary")
                break
            if msg.type is not WSMsgType.TEXT:
                if msg.type is WSMsgType.ERROR:
                    # aiohttp already closed with 1009 (too big) or 1002 (protocol error)
                    log.info("chat %s: viewer %s closed: %s", viewer.broadcast_id, viewer.viewer_id, ws.exception())
                break
            try:
                message = proto.parse_client_message(msg.data)
            except proto.ProtocolError as exc:
                relay.metrics.protocol_errors.labels(exc.code).inc()
                log.info("chat %s: viewer %s: %s", viewer.broadcast_id, viewer.viewer_id, exc.message)
                try:
                    if relay.allow_message(viewer, viewer.comments):
                        relay.send(viewer, proto.error_event(exc.code, exc.message))
                except Abusive:
                    await self._abusive(ws, viewer)
                    break
                continue
            try:
                if isinstance(message, proto.CommentIn):
                    if viewer.role == "viewer" and await self.names.is_reserved(viewer.broadcast_id, viewer.name):
                        # the name became a moderator's after this viewer joined
                        relay.send(viewer, proto.error_event("name_reserved", _reserved(viewer.name)))
                        continue
                    await relay.handle_comment(viewer, message)
                elif isinstance(message, proto.React):
                    relay.handle_react(viewer, message)
                else:
                    relay.send(viewer, proto.error_event("already_hello", "hello was already sent"))
            except Abusive:
                await self._abusive(ws, viewer)
                break
            except BusUnavailable:
                relay.send(viewer, proto.error_event("unavailable", "the chat is briefly unavailable; try again"))

    async def _abusive(self, ws: web.WebSocketResponse, viewer: Viewer) -> None:
        log.info("chat %s: viewer %s keeps flooding; closing 1008", viewer.broadcast_id, viewer.viewer_id)
        self.relay.leave(viewer)
        viewer.closed = True
        await ws.close(code=proto.CLOSE_POLICY, message=b"flooding")


def _reserved(name: str) -> str:
    return f"the name {name[:40]!r} is reserved on this broadcast; choose another"
