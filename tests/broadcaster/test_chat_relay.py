"""The chat relay through its WebSocket protocol, on the memory and the Redis bus."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from broadcaster.chat import Action, ModerationOutcome
from tests.broadcaster.chat_support import ChatNode, Viewer, bus_kind, chat_node  # noqa: F401  (fixtures)
from tests.support.bans import ban


async def test_comment_reaches_every_viewer_in_order(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    alice = await chat_node.viewer(b["id"], name="alice")
    bob = await chat_node.viewer(b["id"], name="bob")
    for i in range(5):
        await alice.comment(f"hello {i}", question=(i == 2))
    got_a = await alice.comments_until(5)
    got_b = await bob.comments_until(5)
    assert [c["text"] for c in got_b] == [f"hello {i}" for i in range(5)]
    assert got_a == got_b
    first = got_b[0]
    assert first["author"]["name"] == "alice" and first["id"].startswith("c_") and isinstance(first["ts"], int)
    assert [c["question"] for c in got_b] == [False, False, True, False, False]
    seqs = [c["seq"] for c in got_b]
    assert seqs == sorted(seqs) and len(set(c["id"] for c in got_b)) == 5


async def test_history_on_join_excludes_removed_and_is_bounded(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    alice = await chat_node.viewer(b["id"], name="alice")
    for i in range(55):
        await chat_node.relay.host.publish_comment(b["id"], _comment(f"c{i}"))
    got = await alice.comments_until(55)
    removed = got[53]["id"]
    assert await chat_node.relay.host.remove_comment(b["id"], removed)
    assert (await alice.expect("comment_removed"))["id"] == removed
    history = (await chat_node.viewer(b["id"], name="late")).events[0]
    texts = [c["text"] for c in history["comments"]]
    assert "c53" not in texts
    assert texts[-1] == "c54" and len(texts) <= 50
    assert texts == [t for t in [f"c{i}" for i in range(55)] if t != "c53"][-len(texts):]
    assert history["you"]["name"] == "late"


async def test_reconnect_with_since_gets_only_missed_comments(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    alice = await chat_node.viewer(b["id"], name="alice")
    bob = await chat_node.viewer(b["id"], name="bob")
    for i in range(3):
        await alice.comment(f"before {i}")
    seen = await bob.comments_until(3)
    await bob.ws.close()
    for i in range(4):
        await alice.comment(f"missed {i}")
    await alice.comments_until(7)
    again = await chat_node.viewer(b["id"], name="bob", since=seen[-1]["id"])
    history = again.events[0]
    assert [c["text"] for c in history["comments"]] == [f"missed {i}" for i in range(4)]
    await alice.comment("after")
    nxt = await again.expect("comment")
    assert nxt["text"] == "after"
    # by seq as well
    again2 = await chat_node.viewer(b["id"], name="bob", since=seen[-1]["seq"])
    assert len(again2.events[0]["comments"]) == 5


async def test_malformed_messages_get_error_events(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    v = await chat_node.viewer(b["id"], name="v")
    other = await chat_node.viewer(b["id"], name="other")
    cases = [
        ("{not json", "invalid_json", "message is not valid JSON"),
        ("[1, 2]", "bad_message", "message must be a JSON object"),
        (json.dumps({"type": "dance"}), "unknown_type", "unknown message type 'dance'"),
        (json.dumps({"type": "comment", "text": "x" * 501}), "bad_field", "'text' is longer than 500 characters"),
        (json.dumps({"type": "comment", "text": "   "}), "bad_field", "'text' must be a non-empty string"),
        (json.dumps({"type": "comment", "text": "hi", "question": "yes"}), "bad_field",
         "'question' must be true or false"),
        (json.dumps({"type": "react", "kind": "angry"}), "bad_field",
         "'kind' must be one of like, celebrate, love, insightful, curious"),
    ]
    for raw, code, message in cases:
        await v.ws.send_str(raw)
        err = await v.expect("error")
        assert (err["code"], err["message"]) == (code, message), raw
    await v.comment("still fine")
    assert (await other.expect("comment"))["text"] == "still fine"


async def test_binary_frame_closes_1003(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    v = await chat_node.viewer(b["id"], name="v")
    other = await chat_node.viewer(b["id"], name="other")
    await v.ws.send_bytes(b"\x00\x01binary")
    assert await v.closed() == 1003
    assert any(e["code"] == "binary" for e in v.errors())
    await other.comment("other still here")
    assert (await other.expect("comment"))["text"] == "other still here"


async def test_ten_megabyte_frame_closes_1009(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    v = await chat_node.viewer(b["id"], name="v")
    other = await chat_node.viewer(b["id"], name="other")
    # Read while sending: the server answers after the frame header, long before
    # the 10 MB are through, and then stops reading.
    sending = asyncio.create_task(v.ws.send_str(json.dumps({"type": "comment", "text": "x" * (10 * 1024 * 1024)})))
    assert await v.closed() == 1009
    await asyncio.gather(sending, return_exceptions=True)
    await other.comment("unaffected")
    assert (await other.expect("comment"))["text"] == "unaffected"


async def test_comment_flood_is_rate_limited_then_closed_1008(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    flooder = await chat_node.viewer(b["id"], name="flooder")
    other = await chat_node.viewer(b["id"], name="other")
    started = time.monotonic()
    for i in range(1000):
        try:
            await flooder.comment(f"spam {i}")
        except (ConnectionResetError, aiohttp.ClientConnectionError):
            break
    assert await flooder.closed() == 1008
    flooding = time.monotonic() - started  # the bucket refilled (3/s) for at most this long
    errors = flooder.errors()
    assert errors and all(e["code"] == "rate_limited" for e in errors)
    assert errors[0]["message"] == "too many messages; slow down"
    await other.comment("I can still talk")
    got = await other.expect("comment", text="I can still talk")
    assert got["author"]["name"] == "other"
    spam = [e for e in other.events if e["type"] == "comment" and e["text"].startswith("spam")]
    assert 0 < len(spam) <= 10 + int(3 * flooding)  # the burst allowance and its refill, no more


async def test_hello_rules(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    ws = await chat_node.client.ws_connect(f"/ws/{b['id']}")
    v = Viewer(ws)
    await v.comment("no hello yet")
    assert (await v.expect("error"))["code"] == "hello_required"
    await v.send({"type": "hello"})
    assert (await v.expect("error"))["message"] == "hello needs a 'name' or a 'token'"
    await v.send({"type": "hello", "name": "x" * 41})
    assert (await v.expect("error"))["message"] == "'name' is longer than 40 characters"
    await v.send({"type": "hello", "name": "ok"})
    await v.expect("history")
    await v.send({"type": "hello", "name": "again"})
    assert (await v.expect("error"))["code"] == "already_hello"
    unknown = Viewer(await chat_node.client.ws_connect("/ws/nope"))
    assert (await unknown.expect("error"))["code"] == "not_found"
    assert await unknown.closed() == 4004


async def test_restricted_broadcast_requires_viewer_token(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast("restricted")
    anon = Viewer(await chat_node.client.ws_connect(f"/ws/{b['id']}"))
    await anon.send({"type": "hello", "name": "sneaky"})
    err = await anon.expect("error")
    assert (err["code"], err["message"]) == ("unauthorized", "this broadcast requires a viewer token")
    assert await anon.closed() == 4001

    url = f"/api/broadcasts/{b['id']}/viewer-tokens"
    # (to a caller without the host's token a restricted broadcast is an unknown id: docs/playback-auth.md)
    resp = await chat_node.client.post(url, json={"name": "Vera"})
    assert resp.status == 404
    resp = await chat_node.client.post(url, json={"name": "Vera"}, headers={"Authorization": "Bearer wrong"})
    assert resp.status == 404 and (await resp.json())["error"] == f"no broadcast {b['id']!r}"
    resp = await chat_node.client.post(url, json={"name": ""}, headers={"Authorization": f"Bearer {b['host_token']}"})
    assert resp.status == 400
    resp = await chat_node.client.post(url, json={"name": "Vera", "viewer_id": "vera-1"},
                                       headers={"Authorization": f"Bearer {b['host_token']}"})
    assert resp.status == 201
    issued = await resp.json()
    assert issued["viewer_id"] == "vera-1"
    vera = await chat_node.viewer(b["id"], token=issued["token"])
    assert vera.events[0]["you"] == {"id": "vera-1", "name": "Vera", "role": "viewer"}  # a named identity: no token
    await vera.comment("hi from vera")
    assert (await vera.expect("comment"))["author"] == {"id": "vera-1", "name": "Vera", "role": "viewer"}

    # a token of another broadcast, and a forged one
    other = await chat_node.create_broadcast("restricted")
    for token, message in [(issued["token"], "viewer token is for another broadcast"),
                           (issued["token"][:-4] + "AAAA", "viewer token signature is invalid")]:
        target = other["id"] if message.endswith("broadcast") else b["id"]
        v = Viewer(await chat_node.client.ws_connect(f"/ws/{target}"))
        await v.send({"type": "hello", "token": token})
        assert (await v.expect("error"))["message"] == message
        assert await v.closed() == 4001


class ScriptedModerator:
    async def moderate(self, broadcast_id: str, viewer_id: str, text: str) -> ModerationOutcome:
        if "darn" in text:
            return ModerationOutcome(Action.PUBLISH_CENSORED, text=text.replace("darn", "****"), filter="profanity")
        if "hold" in text:
            return ModerationOutcome(Action.HOLD, reason="harassment_medium", filter="harassment")
        if "spam" in text:
            return ModerationOutcome(Action.REJECT, reason="link_blocked", filter="links")
        if "boom" in text:
            raise RuntimeError("filter crashed")
        return ModerationOutcome(Action.PUBLISH)


async def test_moderation_outcomes(chat_node: ChatNode) -> None:
    chat_node.relay.moderator = ScriptedModerator()
    b = await chat_node.create_broadcast()
    author = await chat_node.viewer(b["id"], name="author")
    other = await chat_node.viewer(b["id"], name="other")
    await author.comment("darn it")
    assert (await other.expect("comment"))["text"] == "**** it"
    await author.comment("please hold this")
    held = await author.expect("error", code="held_for_review")
    assert held["reason"] == "harassment_medium"
    await author.comment("spam spam")
    rejected = await author.expect("error", code="rejected")
    assert (rejected["message"], rejected["filter"]) == ("link_blocked", "links")
    await author.comment("boom")
    assert (await author.expect("error", code="held_for_review"))["reason"] == "moderation_error"
    await author.comment("plain")
    assert (await other.expect("comment"))["text"] == "plain"  # nothing held/rejected was shown
    assert not other.errors()
    # approval publishes the held comment exactly once, everywhere
    held_ids = {h["held_id"] for h in await chat_node.relay.host.list_held(b["id"])}
    assert held["held_id"] in held_ids and len(held_ids) == 2
    published = await chat_node.relay.host.publish_held(b["id"], held["held_id"])
    assert published is not None and published["text"] == "please hold this"
    assert await chat_node.relay.host.publish_held(b["id"], held["held_id"]) is None
    shown = await other.expect("comment")
    assert shown["text"] == "please hold this" and shown["author"]["name"] == "author"
    assert "reason" not in shown


async def test_ban_pin_and_remove(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    troll = await chat_node.viewer(b["id"], name="troll")
    identity = troll.events[0]["you"]["token"]
    other = await chat_node.viewer(b["id"], name="other")
    await troll.comment("first")
    first = await other.expect("comment")
    await chat_node.relay.host.ban(ban(b["id"], first["author"]["id"]))
    assert await chat_node.relay.host.is_banned(b["id"], first["author"]["id"])
    # the ban closes the troll's socket, and its identity cannot come back
    err = await troll.expect("error")
    assert (err["code"], err["message"]) == ("banned", "you are banned from this chat")
    assert await troll.closed() == 4003
    again = Viewer(await chat_node.client.ws_connect(f"/ws/{b['id']}"))
    await again.send({"type": "hello", "name": "troll", "token": identity})
    assert (await again.expect("error"))["code"] == "banned"
    assert await again.closed() == 4003
    await chat_node.relay.host.remove_comment(b["id"], first["id"])
    assert (await other.expect("comment_removed"))["id"] == first["id"]
    await chat_node.relay.host.set_pinned(b["id"], {**first, "text": "pinned text"})
    pinned = await other.expect("pinned")
    assert pinned["comment"]["text"] == "pinned text" and pinned["comment"]["id"] == first["id"]
    newcomer = await chat_node.viewer(b["id"], name="new")
    assert (await newcomer.expect("pinned")) == {"type": "pinned", "comment": pinned["comment"]}
    await chat_node.relay.host.set_pinned(b["id"], None)
    assert (await other.expect("pinned"))["comment"] is None
    await chat_node.relay.host.unban(b["id"], first["author"]["id"])
    back = await chat_node.viewer(b["id"], name="troll", token=identity)
    assert back.events[0]["you"]["id"] == first["author"]["id"]
    await back.comment("third")
    assert (await other.expect("comment"))["text"] == "third"


async def test_reactions_are_aggregated_per_tick(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    viewers = [await chat_node.viewer(b["id"], name=f"v{i}") for i in range(5)]
    for v in viewers:
        for _ in range(10):
            await v.send({"type": "react", "kind": "like"})
        await v.send({"type": "react", "kind": "love"})
    watcher = viewers[0]
    deltas = {"like": 0, "love": 0}
    last = None
    while deltas != {"like": 50, "love": 5}:
        last = await watcher.expect("reactions")
        for k, n in last["counts"].items():
            deltas[k] += n
    assert last["totals"] == {"like": 50, "love": 5}
    reaction_events = [e for e in watcher.events if e["type"] == "reactions" and e["counts"]]
    assert len(reaction_events) < 55  # aggregated, not forwarded one by one
    assert (await chat_node.relay.bus.reaction_totals(b["id"])) == {"like": 50, "love": 5}


async def test_viewer_count(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    first = await chat_node.viewer(b["id"], name="a")
    others = [await chat_node.viewer(b["id"], name=f"v{i}") for i in range(3)]
    assert (await first.expect("viewers", count=4))["count"] == 4
    await others[0].ws.close()
    await first.expect("viewers", count=3)


async def test_shutdown_closes_sockets_going_away(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    v = await chat_node.viewer(b["id"], name="a")
    # server.close() runs on_shutdown and the cleanup contexts; read meanwhile,
    # as a real client does, so the close handshake completes.
    closing = asyncio.create_task(chat_node.client.server.close())
    assert await v.closed() == 1001
    await closing


def _comment(text: str) -> dict:
    from broadcaster.chat.relay import new_comment
    return new_comment({"id": "v_host", "name": "host"}, text, False)


async def test_flood_before_hello_is_closed_1008(chat_node: ChatNode) -> None:
    b = await chat_node.create_broadcast()
    v = Viewer(await chat_node.client.ws_connect(f"/ws/{b['id']}"))
    for _ in range(25):
        try:
            await v.ws.send_str("{nope")
        except ConnectionError:
            break
    assert await v.closed() == 1008
    assert v.errors()[-1] == {"type": "error", "code": "hello_required",
                              "message": "too many messages without a hello"}


async def test_groups_written_in_turn_each_get_every_event_once_in_order(bus_kind: str, tmp_path, aiohttp_client) -> None:
    # A write budget that puts 5 viewers' batches 3 ticks apart: 3 turns of groups.
    node = await ChatNode(bus_kind, tmp_path, tick=0.05, interval=0.05, large_room=3, large_interval=0.1,
                          room_write_rate=40.0, join_run=1).start(aiohttp_client)
    try:
        b = await node.create_broadcast()
        viewers = [await node.viewer(b["id"], name=f"v{i}") for i in range(5)]
        room = node.relay.rooms[b["id"]]
        assert [node.relay.every(n) for n in (2, 3, 5, 9)] == [1, 2, 3, 5]
        assert sorted(len(g) for g in room.groups)[-6:] == [0, 1, 1, 1, 1, 1]  # spread out
        for i in range(20):
            await node.relay.host.publish_comment(b["id"], _comment(f"c{i}"))
            if i == 9:
                await viewers[0].send({"type": "react", "kind": "like"})
                # joins mid-stream: what it misses live is in its history, nothing twice
                viewers.append(await node.viewer(b["id"], name="late"))
            await asyncio.sleep(0.01)
        for v in viewers[:5]:
            assert [c["text"] for c in await v.comments_until(20)] == [f"c{i}" for i in range(20)]
            if not [e for e in v.events if e.get("type") == "reactions" and e["counts"]]:
                await v.expect("reactions", counts={"like": 1})
        late = viewers[5]
        live = await late.comments_until(20 - len(late.events[0]["comments"]))
        assert [c["text"] for c in late.events[0]["comments"] + live] == [f"c{i}" for i in range(20)]
        await asyncio.sleep(0.3)
        assert [e for e in late.events if e.get("type") == "comment"] == live  # no duplicates after
        assert len(room.events) <= 5  # sent to every group: dropped
        for v in viewers:
            await v.ws.close()
    finally:
        await node.cleanup()


async def test_viewers_joining_one_after_the_other_share_a_group_in_runs(bus_kind: str, tmp_path, aiohttp_client) -> None:
    node = await ChatNode(bus_kind, tmp_path, join_run=3).start(aiohttp_client)
    try:
        b = await node.create_broadcast()
        viewers = [await node.viewer(b["id"], name=f"v{i}") for i in range(10)]
        room = node.relay.rooms[b["id"]]
        # runs of 3 joiners, each run in the smallest group: 3 + 3 + 3 + 1
        assert sorted(len(g) for g in room.groups if g) == [1, 3, 3, 3]
        members = [sorted(v.name for v in g) for g in room.groups if g]
        assert sorted(members) == sorted([["v0", "v1", "v2"], ["v3", "v4", "v5"], ["v6", "v7", "v8"], ["v9"]])
        await node.relay.host.publish_comment(b["id"], _comment("to all"))
        for v in viewers:
            assert [c["text"] for c in await v.comments_until(1)] == ["to all"]
            await v.ws.close()
    finally:
        await node.cleanup()
