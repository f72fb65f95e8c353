"""Viewer tokens, grants, revocation and bans of a restricted broadcast through the node's API and chat
(in process; memory bus + SQLite, and real Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.broadcaster.moderation_support import ModNode, mod_kind, mod_node, mod_path  # noqa: F401

pytestmark = pytest.mark.usefixtures("mod_kind")


async def token_for(node: ModNode, bid: str, host: str, name: str = "Ann", **body: Any) -> dict[str, Any]:
    status, doc = await node.call("POST", f"/api/broadcasts/{bid}/viewer-tokens", host, {"name": name, **body})
    assert status == 201, doc
    return doc


async def public_view(node: ModNode, bid: str, grant: str | None) -> tuple[int, Any]:
    return await node.call("GET", f"/api/public/broadcasts/{bid}", grant)


async def hello_refusal(node: ModNode, bid: str, token: str) -> str | None:
    """None if the chat lets ``token`` in, else the error message it closes with (4001)."""
    ws = await node.client.ws_connect(f"/ws/{bid}")
    await ws.send_json({"type": "hello", "token": token})
    first = await ws.receive_json(timeout=5)
    if first["type"] == "history":
        await ws.close()
        return None
    assert first["type"] == "error" and first["code"] == "unauthorized", first
    await ws.receive(timeout=5)
    assert ws.close_code == 4001
    return first["message"]


async def eventually(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.05)


async def test_viewer_tokens_of_a_restricted_broadcast_carry_a_grant_and_urls(mod_node: ModNode) -> None:
    restricted = await mod_node.create_broadcast("restricted")
    public = await mod_node.create_broadcast("public")
    assert len(restricted["id"]) == 32 and len(public["id"]) == 12
    doc = await token_for(mod_node, restricted["id"], restricted["host_token"])
    assert doc["grant"].startswith("pg1.")
    assert doc["hls_url"].endswith(f"/hls/{restricted['id']}/master.m3u8?grant={doc['grant']}")
    assert doc["watch_url"].endswith(f"/watch/{restricted['id']}#token={doc['token']}&grant={doc['grant']}")
    assert set(await token_for(mod_node, public["id"], public["host_token"])) == {"token", "viewer_id", "expires"}
    # the public view answers the grant, in the header or the query
    assert (await public_view(mod_node, restricted["id"], doc["grant"]))[0] == 200
    resp = await mod_node.client.get(f"/api/public/broadcasts/{restricted['id']}", params={"grant": doc["grant"]})
    assert resp.status == 200
    unknown = (404, {"error": f"no broadcast {restricted['id']!r}"})
    assert await public_view(mod_node, restricted["id"], None) == unknown
    assert await public_view(mod_node, restricted["id"], doc["token"]) == unknown  # a token is not a grant
    other = await mod_node.create_broadcast("restricted")
    foreign = await token_for(mod_node, other["id"], other["host_token"])
    assert await public_view(mod_node, restricted["id"], foreign["grant"]) == unknown
    expired = await token_for(mod_node, restricted["id"], restricted["host_token"], ttl=0.5)
    await asyncio.sleep(1.1)
    assert await public_view(mod_node, restricted["id"], expired["grant"]) == \
        (403, {"error": "playback grant has expired"})


async def test_revoking_viewer_tokens_ends_every_grant_and_token_issued_before(mod_node: ModNode) -> None:
    b = await mod_node.create_broadcast("restricted")
    bid, host = b["id"], b["host_token"]
    before = await token_for(mod_node, bid, host)
    assert await hello_refusal(mod_node, bid, before["token"]) is None
    path = mod_path(bid, "revoke-viewer-tokens")
    assert (await mod_node.call("POST", path, None))[0] == 404  # as if unknown
    status, moderator = await mod_node.call("POST", mod_path(bid, "moderators"), host, {"label": "mo"})
    assert status == 201
    assert await mod_node.call("POST", path, moderator["token"]) == \
        (403, {"error": "only the host or an admin can do this"})
    public = await mod_node.create_broadcast("public")
    assert await mod_node.call("POST", mod_path(public["id"], "revoke-viewer-tokens"), public["host_token"]) == \
        (409, {"error": "only a restricted broadcast's viewer tokens can be revoked (a public one needs none)"})
    assert await mod_node.call("POST", path, host, {"reason": "link leaked"}) == (200, {"epoch": 1})
    assert await public_view(mod_node, bid, before["grant"]) == (403, {"error": "playback grant was revoked"})
    assert await hello_refusal(mod_node, bid, before["token"]) == "viewer token was revoked"
    after = await token_for(mod_node, bid, host)
    assert (await public_view(mod_node, bid, after["grant"]))[0] == 200
    assert await hello_refusal(mod_node, bid, after["token"]) is None
    # the console's own chat token carries the current epoch too
    status, console = await mod_node.call("POST", mod_path(bid, "chat-token"), host)
    assert status == 201 and await hello_refusal(mod_node, bid, console["token"]) is None
    status, audit = await mod_node.call("GET", mod_path(bid, "audit"), host)
    assert [e for e in audit["entries"] if e["action"] == "revoke_viewer_tokens"][0]["reason"] == "link leaked"


async def test_a_banned_viewer_loses_playback_and_chat_until_unbanned(mod_node: ModNode) -> None:
    b = await mod_node.create_broadcast("restricted")
    bid, host = b["id"], b["host_token"]
    ann, bob = await token_for(mod_node, bid, host, "Ann"), await token_for(mod_node, bid, host, "Bob")
    status, _ = await mod_node.call("POST", mod_path(bid, f"viewers/{ann['viewer_id']}/ban"), host, {})
    assert status == 200

    async def refused() -> bool:
        return (await public_view(mod_node, bid, ann["grant"]))[0] == 403

    await eventually(refused)
    assert await public_view(mod_node, bid, ann["grant"]) == (403, {"error": "this viewer is banned from the broadcast"})
    assert await hello_refusal(mod_node, bid, ann["token"]) == "this viewer is banned from the broadcast"
    assert (await public_view(mod_node, bid, bob["grant"]))[0] == 200
    # a timeout is the chat's only: playback goes on
    status, _ = await mod_node.call("POST", mod_path(bid, f"viewers/{bob['viewer_id']}/timeout"), host, {"seconds": 60})
    assert status == 200 and (await public_view(mod_node, bid, bob["grant"]))[0] == 200
    status, _ = await mod_node.call("DELETE", mod_path(bid, f"viewers/{ann['viewer_id']}/ban"), host, {})
    assert status == 200

    async def back() -> bool:
        return (await public_view(mod_node, bid, ann["grant"]))[0] == 200

    await eventually(back)
    assert await hello_refusal(mod_node, bid, ann["token"]) is None


async def test_host_calls_without_the_right_token_look_as_if_the_restricted_broadcast_did_not_exist(
        mod_node: ModNode) -> None:
    restricted = await mod_node.create_broadcast("restricted")
    public = await mod_node.create_broadcast("public")
    unknown = "0123456789abcdef" * 2
    calls = [("GET", "/api/broadcasts/{id}"), ("POST", "/api/broadcasts/{id}/end"),
             ("POST", "/api/broadcasts/{id}/viewer-tokens"), ("GET", "/api/broadcasts/{id}/moderation/settings"),
             ("POST", "/api/broadcasts/{id}/moderation/revoke-viewer-tokens")]
    for method, path in calls:
        for token in (None, "nope", public["host_token"]):
            answers = [await mod_node.call(method, path.format(id=bid), token, {"name": "x"})
                       for bid in (restricted["id"], unknown)]
            assert answers[0] == (404, {"error": f"no broadcast {restricted['id']!r}"}), (method, path, token)
            assert answers[1] == (404, {"error": f"no broadcast {unknown!r}"}), (method, path, token)
        # a public broadcast still says what is wrong
        assert (await mod_node.call(method, path.format(id=public["id"]), "nope", {"name": "x"}))[0] == 401
    # and the right token still works
    status, doc = await mod_node.call("GET", f"/api/broadcasts/{restricted['id']}", restricted["host_token"])
    assert status == 200 and doc["id"] == restricted["id"]
