"""The chat WebSocket protocol: parsing client messages and building server events.

Pure functions, no I/O: ``parse_client_message`` turns one text frame into a
typed message or raises ``ProtocolError`` with a code and an exact message;
``event`` serialises a server event; ``text_frame``/``close_frame`` build the
WebSocket frame bytes the relay writes once and sends to many sockets.
See docs/chat-protocol.md.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from broadcaster import json_input

REACTION_KINDS = ("like", "celebrate", "love", "insightful", "curious")
MAX_TEXT = 500
MAX_NAME = 40
MAX_TOKEN = 2048

# Close codes (documented in docs/chat-protocol.md).
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003       # binary frame
CLOSE_POLICY = 1008            # flooding after rate-limit errors; no hello in time
CLOSE_TOO_BIG = 1009           # frame larger than MAX_FRAME
CLOSE_SLOW_CONSUMER = 4000     # send buffer passed the bound
CLOSE_UNAUTHORIZED = 4001      # missing/invalid viewer token
CLOSE_BANNED = 4003            # the viewer (or its address) is banned from the broadcast
CLOSE_NOT_FOUND = 4004         # no such broadcast
CLOSE_QUOTA = 4029             # past a per-address quota (sockets, new sockets per second)

#: largest client frame accepted (aiohttp closes bigger ones with 1009)
MAX_FRAME = 16 * 1024


class ProtocolError(ValueError):
    """A client message the server cannot take; ``code`` goes into the error event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Hello:
    name: str | None
    token: str | None
    since: str | int | None


@dataclass(frozen=True)
class CommentIn:
    text: str
    question: bool


@dataclass(frozen=True)
class React:
    kind: str


ClientMessage = Hello | CommentIn | React


def parse_client_message(raw: str) -> ClientMessage:
    try:
        doc = json_input.loads(raw)
    except json_input.JsonInputError:  # also NaN/Infinity, numbers beyond ±2^53, deep nesting
        raise ProtocolError("invalid_json", "message is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ProtocolError("bad_message", "message must be a JSON object")
    kind = doc.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", "message needs a string 'type'")
    if kind == "hello":
        return _hello(doc)
    if kind == "comment":
        return _comment(doc)
    if kind == "react":
        reaction = doc.get("kind")
        if reaction not in REACTION_KINDS:
            raise ProtocolError("bad_field", "'kind' must be one of " + ", ".join(REACTION_KINDS))
        return React(reaction)
    raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")


def _hello(doc: dict[str, Any]) -> Hello:
    name, token, since = doc.get("name"), doc.get("token"), doc.get("since")
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise ProtocolError("bad_field", "'name' must be a non-empty string")
        name = " ".join(name.split())
        if len(name) > MAX_NAME:
            raise ProtocolError("bad_field", f"'name' is longer than {MAX_NAME} characters")
    if token is not None and (not isinstance(token, str) or not token or len(token) > MAX_TOKEN):
        raise ProtocolError("bad_field", "'token' must be a viewer token string")
    if name is None and token is None:
        raise ProtocolError("bad_field", "hello needs a 'name' or a 'token'")
    if since is not None and not (isinstance(since, str) and 0 < len(since) <= 64) \
            and not (isinstance(since, int) and not isinstance(since, bool) and since >= 0):
        raise ProtocolError("bad_field", "'since' must be a comment id or seq")
    return Hello(name, token, since)


def _comment(doc: dict[str, Any]) -> CommentIn:
    text = doc.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ProtocolError("bad_field", "'text' must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ProtocolError("bad_field", f"'text' is longer than {MAX_TEXT} characters")
    question = doc.get("question", False)
    if not isinstance(question, bool):
        raise ProtocolError("bad_field", "'question' must be true or false")
    return CommentIn(text.strip(), question)


def event(kind: str, **fields: Any) -> bytes:
    return json.dumps({"type": kind, **fields}, ensure_ascii=False, separators=(",", ":")).encode()


def error_event(code: str, message: str, **extra: Any) -> bytes:
    return event("error", code=code, message=message, **extra)


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented server→client text frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def close_frame(code: int, reason: str = "") -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:123]
    return struct.pack("!BB", 0x88, len(payload)) + payload
