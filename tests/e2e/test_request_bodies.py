"""Issue 13 §3 in a real node: request bodies, from a raw socket.

- Every JSON endpoint and a WHIP offer answer the same whether the body arrives in
  one TCP segment or in two, 0.3 s apart (a short read was "invalid JSON", a 500 for
  an offer).
- NaN, Infinity, 1e23, an out-of-range integer and nesting 10,000 deep are a 400 with
  a message on every JSON endpoint; settings outside their bounds too; a malformed
  SDP offer is a 400.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.broadcaster.chat_support import connect
from tests.support.node import ADMIN_TOKEN, NodeProcess
from tests.support.raw_http import RawResponse, raw_request
from tests.support.whip import make_offer

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    body: dict[str, Any]
    token: str = ADMIN_TOKEN


def calls(bid: str, host: str, comment: str, viewer: str) -> list[Call]:
    """Every endpoint that takes a JSON body, with a valid body; ``comment``/``viewer`` differ per run."""
    mod = f"/api/broadcasts/{bid}/moderation"
    return [
        Call("create broadcast", "POST", "/api/broadcasts", {"title": "split", "visibility": "restricted"}),
        Call("viewer token", "POST", f"/api/broadcasts/{bid}/viewer-tokens",
             {"name": "Ada", "viewer_id": viewer, "ttl": 3600}, host),
        Call("settings", "PUT", f"{mod}/settings",
             {"blocked_terms": ["spoil*"] * 40, "slow_mode_seconds": 1.5, "rate_limit_count": 50}, host),
        Call("pin", "PUT", f"{mod}/pin", {"comment_id": comment}, host),
        Call("delete comment", "DELETE", f"{mod}/comments/{comment}", {"reason": "off topic " * 20}, host),
        Call("timeout", "POST", f"{mod}/viewers/{viewer}/timeout", {"seconds": 60, "reason": "calm down"}, host),
        Call("ban", "POST", f"{mod}/viewers/{viewer}/ban", {"reason": "rude"}, host),
        Call("unban", "DELETE", f"{mod}/viewers/{viewer}/ban", {"reason": "apologised"}, host),
        Call("purge", "POST", f"{mod}/viewers/{viewer}/purge", {"reason": "cleanup"}, host),
        Call("reject held", "POST", f"{mod}/held/h_unknown/reject", {"reason": "no"}, host),
        Call("grant moderator", "POST", f"{mod}/moderators", {"label": "helper"}, host),
    ]


#: fields that differ between two identical requests (fresh ids, secrets, clocks)
VOLATILE = {"id", "token", "grant", "until", "expires", "created_at", "stream_key", "host_token", "at"}


def normalised(response: RawResponse, replace: dict[str, str]) -> tuple[int, Any]:
    text = response.body.decode()
    for value, placeholder in replace.items():
        text = text.replace(value, placeholder)
    doc = json.loads(text)

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE and not k.endswith("_url")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return response.status, strip(doc)


def send(node: NodeProcess, call: Call, *, split: bool, raw: bytes | None = None) -> RawResponse:
    body = raw if raw is not None else json.dumps(call.body).encode()
    return raw_request(node.http_port, call.method, call.path, body,
                       {"Authorization": f"Bearer {call.token}", "Content-Type": "application/json"},
                       split_at=len(body) // 2 if split else None)


async def _post_comments(node: NodeProcess, bid: str, token: str, texts: list[str]) -> list[str]:
    async with aiohttp.ClientSession() as session:
        viewer = await connect(f"{node.ws_base}/ws/{bid}", session, token=token)
        ids = []
        for text in texts:
            await viewer.comment(text)
            ids.append((await viewer.expect("comment", text=text))["id"])
        await viewer.ws.close()
        return ids


@pytest.fixture
def node(node_factory: Callable[..., NodeProcess]) -> NodeProcess:
    return node_factory(ice_host="127.0.0.1", ladder="source")


def test_every_json_body_in_two_segments_gets_the_same_answer_as_in_one(node: NodeProcess) -> None:
    b = node.create_broadcast("bodies", visibility="restricted")
    bid, host = b["id"], b["host_token"]
    status, author = node.request("POST", f"/api/broadcasts/{bid}/viewer-tokens", {"name": "author"}, token=host)
    assert status == 201
    comments = asyncio.run(_post_comments(node, bid, author["token"], ["first comment", "second comment"]))
    answers: list[list[tuple[int, Any]]] = []
    for run, split in enumerate((False, True)):
        comment, viewer = comments[run], f"v_run{run}"
        placeholders = {comment: "<comment>", viewer: "<viewer>"}
        answers.append([normalised(send(node, call, split=split), placeholders)
                        for call in calls(bid, host, comment, viewer)])
    for call, whole, split in zip(calls(bid, host, "c", "v"), *answers):
        assert split == whole, call.name
        assert whole[0] in (200, 201, 404), (call.name, whole)  # 404: the unknown held comment
    assert [a[0] for a in answers[0]] == [201, 201, 200, 200, 200, 200, 200, 200, 200, 404, 201]


def test_a_whip_offer_in_two_segments_is_answered_like_one_in_one(node: NodeProcess) -> None:
    offer = asyncio.run(make_offer()).encode()
    assert len(offer) > 1000
    kinds = []
    for split in (False, True):
        doc = node.create_broadcast(f"whip split={split}")
        response = raw_request(node.http_port, "POST", f"/whip/{doc['id']}", offer,
                               {"Authorization": f"Bearer {doc['stream_key']}", "Content-Type": "application/sdp"},
                               split_at=len(offer) // 2 if split else None)
        assert response.status == 201, response.body
        assert response.headers["content-type"] == "application/sdp"
        kinds.append(re.findall(r"^m=(\w+) ", response.body.decode(), re.M))
        location = response.headers["location"]
        deleted = raw_request(node.http_port, "DELETE", location,
                              headers={"Authorization": f"Bearer {doc['stream_key']}"})
        assert deleted.status == 200
    assert kinds[0] == kinds[1] == ["video", "audio"]
    # a malformed offer (no DTLS role) is refused before any peer connection, never a 500
    doc = node.create_broadcast("whip malformed")
    broken = re.sub(rb"a=setup:\w+\r\n", b"", offer)
    response = raw_request(node.http_port, "POST", f"/whip/{doc['id']}", broken,
                           {"Authorization": f"Bearer {doc['stream_key']}", "Content-Type": "application/sdp"})
    assert response.status == 400
    assert response.json()["error"].startswith("invalid SDP offer: the video section has no DTLS fingerprint")


BAD_NUMBERS = {
    "NaN": "NaN is not a JSON number",
    "Infinity": "Infinity is not a JSON number",
    "-Infinity": "-Infinity is not a JSON number",
    "1e23": "number 1e23 is out of range (at most ±9007199254740991)",
    "100000000000000000000000": "number 100000000000000000000000 is out of range (at most ±9007199254740991)",
    "[" * 10_000 + "]" * 10_000: "JSON nested deeper than 32 levels",
}


def test_non_finite_huge_and_deep_json_is_a_400_on_every_json_endpoint(node: NodeProcess) -> None:
    b = node.create_broadcast("numbers")
    bid, host = b["id"], b["host_token"]
    for call in calls(bid, host, "c_none", "v_none"):
        field = next(iter(call.body))
        for literal, message in BAD_NUMBERS.items():
            raw = ('{"%s": %s}' % (field, literal)).encode()
            response = send(node, call, split=False, raw=raw)
            assert (response.status, response.json()) == (400, {"error": message}), (call.name, literal[:20])
    status, settings = node.request("GET", f"/api/broadcasts/{bid}/moderation/settings", token=host)
    assert status == 200 and settings["rate_limit_count"] == 5  # nothing was stored


@pytest.mark.parametrize("setting, value, message", [
    ("rate_limit_count", 5000, "rate_limit_count must be an integer between 1 and 1000"),
    ("max_mentions", 0, "max_mentions must be an integer between 1 and 100"),
    ("slow_mode_seconds", 1e6, "slow_mode_seconds must be a number of seconds between 0 and 86400"),
    ("blocked_terms", ["x" * 101], "each of blocked_terms must be at most 100 characters"),
])
def test_settings_outside_their_bounds_are_a_400(node: NodeProcess, setting: str, value: Any, message: str) -> None:
    b = node.create_broadcast("bounds")
    status, answer = node.request("PUT", f"/api/broadcasts/{b['id']}/moderation/settings", {setting: value},
                                  token=b["host_token"])
    assert (status, answer) == (400, {"error": message})
