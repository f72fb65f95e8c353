"""The host moderation API on an in-process node (memory bus + SQLite, and real Redis):
every action, its effect on connected viewers, its audit entry, and the auth failures."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.broadcaster.moderation_support import (ModNode, comment_and_wait, mod_cluster, mod_kind,  # noqa: F401
                                                  mod_node, mod_path)
from tests.broadcaster.chat_support import Viewer
from tests.support.node import ADMIN_TOKEN

HARASSMENT = "nobody wants you here, idiot"  # held at the default (medium) strictness


async def setup_broadcast(node: ModNode, visibility: str = "public") -> tuple[str, str]:
    b = await node.create_broadcast(visibility)
    return b["id"], b["host_token"]


async def viewer_token(node: ModNode, bid: str, host: str, name: str, viewer_id: str | None = None) -> str:
    body: dict[str, Any] = {"name": name}
    if viewer_id:
        body["viewer_id"] = viewer_id
    status, doc = await node.call("POST", f"/api/broadcasts/{bid}/viewer-tokens", host, body)
    assert status == 201, doc
    return doc["token"]


async def audit_actions(node: ModNode, bid: str, token: str) -> list[dict[str, Any]]:
    status, doc = await node.call("GET", mod_path(bid, "audit"), token)
    assert status == 200, doc
    return doc["entries"]


async def test_auth_failures(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node)
    other_bid, other_host = await setup_broadcast(mod_node)
    path = mod_path(bid, "settings")
    assert await mod_node.call("GET", path, None) == (401, {"error": "missing bearer token"})
    assert await mod_node.call("GET", path, "nope") == (401, {"error": "invalid token for this broadcast"})
    assert await mod_node.call("GET", path, other_host) == (401, {"error": "invalid token for this broadcast"})
    assert await mod_node.call("GET", mod_path("nosuch", "settings"), host) == (404, {"error": "no broadcast 'nosuch'"})
    # a moderator token of another broadcast, and a moderator managing moderators
    status, grant = await mod_node.call("POST", mod_path(other_bid, "moderators"), other_host, {"label": "mo"})
    assert status == 201
    assert await mod_node.call("GET", path, grant["token"]) == (403, {"error": "this moderator token is for another broadcast"})
    status, own = await mod_node.call("POST", mod_path(bid, "moderators"), host, {"label": "ann"})
    assert status == 201 and own["token"].startswith("mod_")
    assert (await mod_node.call("GET", path, own["token"]))[0] == 200
    assert await mod_node.call("POST", mod_path(bid, "moderators"), own["token"], {"label": "x"}) == \
        (403, {"error": "only the host or an admin can do this"})
    assert await mod_node.call("GET", mod_path(bid, "me"), own["token"]) == \
        (200, {"actor": "moderator:ann", "broadcast": {"id": bid, "title": "chat test", "visibility": "public"}})
    # revoked: the token stops working
    assert (await mod_node.call("DELETE", mod_path(bid, f"moderators/{own['id']}"), host))[0] == 204
    assert (await mod_node.call("GET", path, own["token"]))[0] == 401
    assert await mod_node.call("DELETE", mod_path(bid, f"moderators/{own['id']}"), host) == \
        (404, {"error": f"no moderator grant {own['id']!r} on this broadcast"})
    # privacy tools: admin only
    assert (await mod_node.call("GET", "/api/viewers/v_x/export", None))[0] == 401
    assert await mod_node.call("GET", "/api/viewers/v_x/export", host) == (403, {"error": "the admin token is required"})
    assert await mod_node.call("POST", "/api/viewers/v_x/erase", host) == (403, {"error": "the admin token is required"})
    entries = await audit_actions(mod_node, bid, host)
    assert [(e["action"], e["actor"]) for e in entries] == [("grant_moderator", "host"), ("revoke_moderator", "host")]


async def test_bad_input_gets_exact_errors(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node)
    assert await mod_node.call("PUT", mod_path(bid, "settings"), host, {"strictness": "extreme"}) == \
        (400, {"error": "strictness must be one of off, low, medium, high"})
    assert await mod_node.call("PUT", mod_path(bid, "settings"), host, {"colour": 1}) == \
        (400, {"error": "unknown settings field: colour"})
    assert await mod_node.call("PUT", mod_path(bid, "settings"), host, {}) == \
        (400, {"error": "the body must name at least one setting"})
    status, doc = await mod_node.call("PUT", mod_path(bid, "settings"), host, data=b"{not json")
    assert status == 400 and doc["error"].startswith("invalid JSON")
    assert await mod_node.call("POST", mod_path(bid, "viewers/v_1/timeout"), host, {"seconds": 0}) == \
        (400, {"error": "'seconds' must be a number between 1 and 604800"})
    assert await mod_node.call("POST", mod_path(bid, "viewers/v_1/timeout"), host, {}) == \
        (400, {"error": "'seconds' is required"})
    assert await mod_node.call("POST", mod_path(bid, "viewers/v_1/ban"), host, {"reason": 5}) == \
        (400, {"error": "'reason' must be a string"})
    assert await mod_node.call("POST", mod_path(bid, "viewers/bad%20id/ban"), host) == \
        (400, {"error": "'viewer_id' must be 1-64 characters of A-Z a-z 0-9 _ . : -"})
    assert await mod_node.call("DELETE", mod_path(bid, "comments/" + "c" * 65), host) == \
        (400, {"error": "'comment_id' must be 1-64 characters of A-Z a-z 0-9 _ -"})
    assert await mod_node.call("PUT", mod_path(bid, "pin"), host, {}) == \
        (400, {"error": "'comment_id' is required and must be a string"})
    assert await mod_node.call("PUT", mod_path(bid, "pin"), host, {"comment_id": "c_nope"}) == \
        (404, {"error": "no comment 'c_nope' in the recent history of this broadcast"})
    assert await mod_node.call("POST", mod_path(bid, "held/h_nope/approve"), host) == \
        (404, {"error": "no held comment 'h_nope' (unknown or already handled)"})
    assert await mod_node.call("GET", mod_path(bid, "audit?limit=0"), host) == \
        (400, {"error": "'limit' must be between 1 and 1000"})
    assert await mod_node.call("POST", mod_path(bid, "moderators"), host, {"label": ""}) == \
        (400, {"error": "'label' is required and must be a non-empty string"})
    # nothing of that changed anything
    assert await audit_actions(mod_node, bid, host) == []


async def test_delete_purge_and_pin_reach_every_viewer(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node)
    alice = await mod_node.viewer(bid, name="alice")
    bob = await mod_node.viewer(bid, name="bob")
    first = await comment_and_wait(alice, bob, "first from alice")
    await comment_and_wait(alice, bob, "second from alice")
    kept = await comment_and_wait(bob, bob, "from bob")

    status, doc = await mod_node.call("DELETE", mod_path(bid, f"comments/{first['id']}"), host, {"reason": "spam"})
    assert status == 200 and doc == {"comment_id": first["id"], "removed": True, "in_history": True}
    assert (await bob.expect("comment_removed"))["id"] == first["id"]
    late = await mod_node.viewer(bid, name="late")
    shown = [c["text"] for c in late.events[0]["comments"]]
    assert shown == ["second from alice", "from bob"]

    # pin bob's comment, then purge alice: only alice's comments go
    assert await mod_node.call("PUT", mod_path(bid, "pin"), host, {"comment_id": kept["id"]}) == \
        (200, {"pinned": kept["id"]})
    assert (await bob.expect("pinned"))["comment"]["id"] == kept["id"]
    status, doc = await mod_node.call("POST", mod_path(bid, f"viewers/{first['author']['id']}/purge"), host)
    assert status == 200 and len(doc["removed"]) == 1
    assert (await bob.expect("comment_removed"))["id"] == doc["removed"][0]
    assert (await mod_node.call("DELETE", mod_path(bid, "pin"), host))[0] == 200
    assert (await bob.expect("pinned"))["comment"] is None

    entries = await audit_actions(mod_node, bid, host)
    assert [e["action"] for e in entries] == ["delete_comment", "pin", "purge", "unpin"]
    assert entries[0]["text"] == "first from alice" and entries[0]["reason"] == "spam"
    assert entries[0]["viewer_id"] == first["author"]["id"] and entries[0]["actor"] == "host"
    assert entries[2]["detail"] == {"removed": doc["removed"]}
    for v in (alice, bob, late):
        await v.ws.close()


async def test_timeout_ban_unban_follow_the_signed_identity(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node)
    token = await viewer_token(mod_node, bid, host, "troll", viewer_id="v_troll")
    troll = await mod_node.viewer(bid, token=token)
    watcher = await mod_node.viewer(bid, name="watcher")
    await comment_and_wait(troll, watcher, "hi")

    assert (await mod_node.call("POST", mod_path(bid, "viewers/v_troll/timeout"), host,
                                {"seconds": 60, "reason": "cool down"}))[0] == 200
    await troll.comment("still here")
    assert (await troll.expect("error"))["code"] == "banned"
    status, doc = await mod_node.call("GET", mod_path(bid, "bans"), host)
    assert status == 200 and [(b["viewer_id"], b["reason"]) for b in doc["bans"]] == [("v_troll", "cool down")]
    assert doc["bans"][0]["until"] is not None

    assert (await mod_node.call("DELETE", mod_path(bid, "viewers/v_troll/ban"), host))[0] == 200
    await comment_and_wait(troll, watcher, "back again")

    assert (await mod_node.call("POST", mod_path(bid, "viewers/v_troll/ban"), host, {"reason": "abuse"}))[0] == 200
    # the ban closes the troll's socket; reconnecting with the same signed identity is refused
    assert (await troll.expect("error"))["code"] == "banned"
    assert await troll.closed() == 4003
    again = Viewer(await mod_node.client.ws_connect(f"/ws/{bid}"))
    await again.send({"type": "hello", "token": token})
    assert (await again.expect("error"))["code"] == "banned"
    assert await again.closed() == 4003
    entries = await audit_actions(mod_node, bid, host)
    assert [(e["action"], e["viewer_id"]) for e in entries] == \
        [("timeout", "v_troll"), ("unban", "v_troll"), ("ban", "v_troll")]
    assert entries[0]["detail"] == {"seconds": 60}
    await watcher.ws.close()


async def test_held_comment_approve_and_reject(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node)
    author = await mod_node.viewer(bid, name="author")
    watcher = await mod_node.viewer(bid, name="watcher")
    await author.comment(HARASSMENT)
    held_event = await author.expect("error", code="held_for_review")
    await author.comment("go kill yourself")
    assert (await author.expect("error", code="rejected"))["reason"] == "self_harm"

    status, doc = await mod_node.call("GET", mod_path(bid, "held"), host)
    assert status == 200 and [h["held_id"] for h in doc["held"]] == [held_event["held_id"]]
    assert doc["held"][0]["text"] == HARASSMENT and doc["held"][0]["filter"] == "harassment"

    status, doc = await mod_node.call("POST", mod_path(bid, f"held/{held_event['held_id']}/approve"), host)
    assert status == 200 and doc["comment"]["text"] == HARASSMENT
    assert (await watcher.expect("comment"))["text"] == HARASSMENT
    # handled once: a second approval (e.g. from another moderator) is a 404
    assert (await mod_node.call("POST", mod_path(bid, f"held/{held_event['held_id']}/approve"), host))[0] == 404

    await author.comment("you are pathetic, " + HARASSMENT)
    second = await author.expect("error", code="held_for_review")
    assert await mod_node.call("POST", mod_path(bid, f"held/{second['held_id']}/reject"), host,
                               {"reason": "insult"}) == (200, {"held_id": second["held_id"], "rejected": True})
    assert (await mod_node.call("GET", mod_path(bid, "held"), host))[1] == {"held": []}

    entries = await audit_actions(mod_node, bid, host)
    assert [(e["actor"], e["action"], e["filter"]) for e in entries] == [
        ("auto", "auto_hold", "harassment"), ("auto", "auto_reject", "harassment"),
        ("host", "approve_held", None), ("auto", "auto_hold", "harassment"), ("host", "reject_held", None)]
    assert entries[1]["text"] == "go kill yourself" and entries[1]["reason"] == "self_harm"
    for v in (author, watcher):
        await v.ws.close()


async def test_settings_apply_to_the_next_comment(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node)
    status, doc = await mod_node.call("PUT", mod_path(bid, "settings"), host,
                                      {"blocked_terms": ["spoil*"], "link_policy": "block", "strictness": "high"})
    assert status == 200 and doc["blocked_terms"] == ["spoil*"] and doc["link_policy"] == "block"
    assert (await mod_node.call("GET", mod_path(bid, "settings"), host))[1]["strictness"] == "high"
    viewer = await mod_node.viewer(bid, name="v")
    await viewer.comment("big spoilers ahead")
    blocked = await viewer.expect("error")
    assert blocked["code"] in ("rejected", "held_for_review")
    await viewer.comment("see http://example.com now")
    assert (await viewer.expect("error"))["code"] in ("rejected", "held_for_review")
    # slow mode on: a second comment within N seconds is refused
    assert (await mod_node.call("PUT", mod_path(bid, "settings"), host, {"slow_mode_seconds": 30}))[0] == 200
    other = await mod_node.viewer(bid, name="w")
    await comment_and_wait(other, other, "one")
    await other.comment("two")
    assert (await other.expect("error", code="rejected"))["reason"] == "slow_mode"
    entries = await audit_actions(mod_node, bid, host)
    assert entries[0]["action"] == "set_settings" and entries[0]["detail"]["blocked_terms"] == ["spoil*"]
    assert any(e["action"] == "set_settings" and e["detail"] == {"slow_mode_seconds": 30.0} for e in entries)
    await viewer.ws.close()
    await other.ws.close()


async def test_moderator_token_can_act_and_is_audited_by_label(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node)
    _, grant = await mod_node.call("POST", mod_path(bid, "moderators"), host, {"label": "Ann  Moderator"})
    assert grant["label"] == "Ann Moderator"
    _, listed = await mod_node.call("GET", mod_path(bid, "moderators"), ADMIN_TOKEN)
    assert [g["id"] for g in listed["moderators"]] == [grant["id"]] and "token" not in listed["moderators"][0]
    viewer = await mod_node.viewer(bid, name="v")
    c = await comment_and_wait(viewer, viewer, "remove me")
    assert (await mod_node.call("DELETE", mod_path(bid, f"comments/{c['id']}"), grant["token"]))[0] == 200
    await viewer.expect("comment_removed", id=c["id"])
    entries = await audit_actions(mod_node, bid, grant["token"])
    assert entries[-1]["actor"] == "moderator:Ann Moderator" and entries[-1]["action"] == "delete_comment"
    # audit paging: after=<id>
    _, page = await mod_node.call("GET", mod_path(bid, f"audit?after={entries[0]['id']}"), host)
    assert [e["id"] for e in page["entries"]] == [e["id"] for e in entries[1:]]
    await viewer.ws.close()


async def test_export_and_erase(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node)
    bid2, host2 = await setup_broadcast(mod_node)
    token = await viewer_token(mod_node, bid, host, "gdpr", viewer_id="v_gdpr")
    token2 = await viewer_token(mod_node, bid2, host2, "gdpr", viewer_id="v_gdpr")
    me = await mod_node.viewer(bid, token=token)
    me2 = await mod_node.viewer(bid2, token=token2)
    other = await mod_node.viewer(bid, name="other")
    mine = await comment_and_wait(me, other, "my personal words")
    await comment_and_wait(other, other, "someone else")
    await comment_and_wait(me2, me2, "elsewhere too")
    await me.comment(HARASSMENT)
    await me.expect("error", code="held_for_review")
    assert (await mod_node.call("PUT", mod_path(bid, "pin"), host, {"comment_id": mine["id"]}))[0] == 200
    assert (await mod_node.call("DELETE", mod_path(bid, f"comments/{mine['id']}"), host))[0] == 200
    await other.expect("comment_removed", id=mine["id"])
    again = await comment_and_wait(me, other, "more words")

    status, export = await mod_node.call("GET", "/api/viewers/v_gdpr/export")
    assert status == 200
    assert [c["text"] for c in export["comments"]] == ["my personal words", "elsewhere too", HARASSMENT, "more words"]
    assert export["broadcasts"] == sorted([bid, bid2]) and [h["text"] for h in export["held"]] == [HARASSMENT]

    status, result = await mod_node.call("POST", "/api/viewers/v_gdpr/erase")
    assert status == 200 and again["id"] in result["removed_comments"] and result["held_dropped"] == 1
    assert (await other.expect("comment_removed", id=again["id"]))
    # gone from the export, from history, from a new joiner, from the held queue and the audit text
    assert (await mod_node.call("GET", "/api/viewers/v_gdpr/export"))[1]["comments"] == []
    # gone from the stored history itself, the earlier removed comment included
    history = await mod_node.relay.bus.history(bid)
    assert [c["text"] for c in history] == ["someone else"]
    assert await mod_node.relay.bus.history(bid2) == []
    joiner = await mod_node.viewer(bid, name="joiner")
    assert [c["text"] for c in joiner.events[0]["comments"]] == ["someone else"]
    assert (await mod_node.call("GET", mod_path(bid, "held"), host))[1] == {"held": []}
    for b, t in ((bid, host), (bid2, host2)):
        for entry in await audit_actions(mod_node, b, t):
            if entry["viewer_id"] == "v_gdpr":
                assert entry["text"] is None, entry
    texts = {e["text"] for e in await audit_actions(mod_node, bid, host)}
    assert not texts & {"my personal words", HARASSMENT, "more words"}
    for v in (me, me2, other, joiner):
        await v.ws.close()


async def test_host_token_of_restricted_broadcast_gets_a_console_chat_token(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node, "restricted")
    status, doc = await mod_node.call("POST", mod_path(bid, "chat-token"), host)
    assert status == 201 and doc["viewer_id"] == "console_host"
    console = await mod_node.viewer(bid, token=doc["token"])
    assert console.events[0]["you"] == {"id": "console_host", "name": "host", "role": "host"}
    await console.ws.close()


async def test_settings_changed_on_one_node_apply_on_another(tmp_path, aiohttp_client) -> None:
    a, b = await mod_cluster(tmp_path, aiohttp_client)
    try:
        bid, host = await setup_broadcast(a)
        viewer_b = await b.viewer(bid, name="on-b")
        await comment_and_wait(viewer_b, viewer_b, "banana bread")
        assert (await a.call("PUT", mod_path(bid, "settings"), host, {"blocked_terms": ["banana*"]}))[0] == 200
        await asyncio.sleep(1.1)  # the settings cache's TTL (1 s) has passed on B
        await viewer_b.comment("banana split")
        assert (await viewer_b.expect("error"))["code"] in ("rejected", "held_for_review")
        await viewer_b.ws.close()
    finally:
        await a.cleanup()


async def test_a_failing_store_holds_comments_instead_of_publishing(tmp_path, aiohttp_client) -> None:
    from broadcaster.moderation_api import MOD_STORE
    node = await ModNode("memory", tmp_path).start(aiohttp_client)
    bid, host = await setup_broadcast(node)
    viewer = await node.viewer(bid, name="v")
    await node.app[MOD_STORE].close()  # the moderation step can no longer read settings or write the audit
    await viewer.comment("hello while broken")
    held = await viewer.expect("error", code="held_for_review")
    assert held["reason"] == "moderation_error"
    await asyncio.sleep(0.2)
    assert not [e for e in viewer.events if e.get("type") == "comment"]
    await viewer.ws.close()


async def test_language_settings_and_held_comments_name_their_language(mod_node: ModNode) -> None:
    bid, host = await setup_broadcast(mod_node)
    path = mod_path(bid, "settings")
    assert await mod_node.call("PUT", path, host, {"languages": ["de", "xx"]}) == \
        (400, {"error": "languages must be a list of language codes (en, ar, nl, fr, de, hi, it, zh, pl, pt, es)"})
    assert await mod_node.call("PUT", path, host, {"language_strictness": {"de": "extreme"}}) == \
        (400, {"error": "language_strictness values must be one of off, low, medium, high"})
    status, doc = await mod_node.call("PUT", path, host, {"languages": ["de", "en"],
                                                          "language_strictness": {"fr": "off"}})
    assert status == 200 and doc["languages"] == ["de", "en"] and doc["language_strictness"] == {"fr": "off"}
    author = await mod_node.viewer(bid, name="author")
    await author.comment("Ich kann Ausländer einfach nicht ausstehen, die sind alle Abschaum.")
    await author.expect("error", code="held_for_review")
    await author.comment("Les immigrés sont des parasites qui ruinent ce pays.")  # French: off on this broadcast
    assert (await author.expect("comment"))["text"].startswith("Les immigrés")
    status, held = await mod_node.call("GET", mod_path(bid, "held"), host)
    assert [(h["language"], h["filter"], h["reason"]) for h in held["held"]] == [("de", "hate_model", "hate_speech")]
    entry = (await audit_actions(mod_node, bid, host))[-1]
    assert entry["action"] == "auto_hold" and entry["detail"]["language"] == "de" and entry["detail"]["score"] >= 0.5
    # approving publishes the comment without the moderation fields
    status, doc = await mod_node.call("POST", mod_path(bid, f"held/{held['held'][0]['held_id']}/approve"), host)
    assert status == 200 and "language" not in doc["comment"] and "filter" not in doc["comment"]
    await author.ws.close()
