"""Comment records: a new one, the fields viewers see (in a fixed order), their JSON,
and the helpers a join uses to pick what history to send."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any


def new_comment(author: dict[str, str], text: str, question: bool) -> dict[str, Any]:
    return {"id": "c_" + secrets.token_urlsafe(9), "ts": int(time.time() * 1000), "author": author,
            "text": text, "question": question}


_FIELDS = ("type", "seq", "id", "ts", "author", "text", "question")


def comment_fields(comment: dict[str, Any]) -> dict[str, Any]:
    """The fields a viewer sees, in a fixed order."""
    out: dict[str, Any] = {"type": "comment"}
    out.update((k, comment[k]) for k in _FIELDS[1:] if k in comment)
    return out


def comment_json(comment: dict[str, Any]) -> bytes:
    return json.dumps(comment_fields(comment), ensure_ascii=False, separators=(",", ":")).encode()


def frame_payload(frame: bytes) -> bytes:
    n = frame[1] & 0x7F
    return frame[2 + (2 if n == 126 else 8 if n == 127 else 0):]


def resolve_since(comments: list[dict[str, Any]], since: str | int | None) -> int:
    if since is None:
        return 0
    if isinstance(since, int):
        return since
    for comment in comments:
        if comment["id"] == since:
            return int(comment["seq"])
    return 0  # unknown (older than the history bound): send all we have
