"""Viewer identities that bans can keep (issue 14 §3), on the memory and the Redis bus:
anonymous identities kept across reconnects, bans and limits that follow them, viewers
counted by identity, per-address quotas (sockets from several loopback addresses) and
address bans."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any


from broadcaster.chat.quotas import AddressLimits
from broadcaster.chat.tokens import issue_anonymous
from tests.broadcaster.chat_support import ChatNode, Sources, Viewer, bus_kind, chat_node, sources  # noqa: F401
from tests.broadcaster.moderation_support import ModNode, mod_cluster, mod_kind, mod_node, mod_path  # noqa: F401
from tests.support.bans import ban


async def refused(viewer: Viewer, hello: dict[str, Any]) -> tuple[str, str, int | None]:
    """Send ``hello`` on a fresh socket: the error code and message, and the close code."""
    await viewer.send({"type": "hello", **hello})
    error = await viewer.expect("error")
    return error["code"], error["message"], await viewer.closed()


async def test_anonymous_identity_is_kept_across_reconnects(chat_node: ChatNode) -> None:
    bid = (await chat_node.create_broadcast())["id"]
    first = await chat_node.viewer(bid, name="ann")
    you = first.events[0]["you"]
    assert you["id"].startswith("a_") and you["name"] == "ann" and you["role"] == "viewer"
    assert you["token"].startswith("va1.")
    await first.ws.close()

    again = await chat_node.viewer(bid, name="ann2", token=you["token"])
    you2 = again.events[0]["you"]
    assert you2["id"] == you["id"] and you2["name"] == "ann2"  # same identity, the name it gives now
    await again.comment("still me")
    assert (await again.expect("comment"))["author"] == {"id": you["id"], "name": "ann2", "role": "viewer"}
    # the token handed back on every hello (fresh expiry) names the same identity
    third = await chat_node.viewer(bid, token=you2["token"])
    assert third.events[0]["you"]["id"] == you["id"] and third.events[0]["you"]["name"] == "guest"
    # someone without a token is someone else
    other = await chat_node.viewer(bid, name="bob")
    assert other.events[0]["you"]["id"] != you["id"]
    for v in (again, third, other):
        await v.ws.close()


async def test_tampered_expired_and_foreign_identities_are_refused(chat_node: ChatNode) -> None:
    bid = (await chat_node.create_broadcast())["id"]
    token = (await chat_node.viewer(bid, name="ann")).events[0]["you"]["token"]
    prefix, body, signature = token.split(".")
    other_body = issue_anonymous(b"another secret", bid, "a_someone_else").split(".")[1]
    secret = chat_node.relay.secret
    restricted = (await chat_node.create_broadcast("restricted"))["id"]
    cases = [
        (token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"), "viewer token signature is invalid", bid),
        (f"{prefix}.{other_body}.{signature}", "viewer token signature is invalid", bid),  # another id, same signature
        (f"vt1.{body}.{signature}", "viewer token signature is invalid", bid),  # passed off as a named token
        (issue_anonymous(secret, bid, "a_old", now=time.time() - 31 * 24 * 3600), "viewer token has expired", bid),
        (token, "viewer token is for another broadcast", (await chat_node.create_broadcast())["id"]),
        (issue_anonymous(secret, restricted, "a_x"), "this broadcast requires a viewer token from its host",
         restricted),
    ]
    for bad, message, target in cases:
        viewer = Viewer(await chat_node.client.ws_connect(f"/ws/{target}"))
        assert await refused(viewer, {"name": "x", "token": bad}) == ("unauthorized", message, 4001), bad


async def test_three_sockets_of_one_identity_count_as_one_viewer(chat_node: ChatNode) -> None:
    bid = (await chat_node.create_broadcast())["id"]
    watcher = await chat_node.viewer(bid, name="watcher")
    tabs = [await chat_node.viewer(bid, name="ann")]
    token = tabs[0].events[0]["you"]["token"]
    tabs += [await chat_node.viewer(bid, name="ann", token=token) for _ in range(2)]
    assert len({t.events[0]["you"]["id"] for t in tabs}) == 1
    await watcher.expect("viewers", count=2)
    for tab in tabs:
        await tab.expect("viewers", count=2)
    await tabs[0].ws.close()
    await tabs[1].ws.close()
    other = await chat_node.viewer(bid, name="bob")
    await other.expect("viewers", count=3)
    await watcher.expect("viewers", count=3)
    await tabs[2].ws.close()  # the identity's last socket
    await watcher.expect("viewers", count=2)
    assert chat_node.relay.presence.local(bid) == 2


async def test_banned_identity_is_refused_and_its_other_sockets_closed(chat_node: ChatNode) -> None:
    bid = (await chat_node.create_broadcast())["id"]
    troll = await chat_node.viewer(bid, name="troll")
    you = troll.events[0]["you"]
    second_tab = await chat_node.viewer(bid, name="troll", token=you["token"])
    watcher = await chat_node.viewer(bid, name="watcher")
    await chat_node.relay.host.ban(ban(bid, you["id"]))
    for tab in (troll, second_tab):
        assert (await tab.expect("error"))["code"] == "banned"
        assert await tab.closed() == 4003
    back = Viewer(await chat_node.client.ws_connect(f"/ws/{bid}"))
    assert await refused(back, {"name": "troll", "token": you["token"]}) == \
        ("banned", "you are banned from this chat", 4003)
    await watcher.comment("still open")
    assert (await watcher.expect("comment"))["text"] == "still open"  # nobody else was touched


async def test_timed_out_identity_may_read_but_not_post_after_reconnecting(chat_node: ChatNode) -> None:
    bid = (await chat_node.create_broadcast())["id"]
    quiet = await chat_node.viewer(bid, name="quiet")
    you = quiet.events[0]["you"]
    watcher = await chat_node.viewer(bid, name="watcher")
    await chat_node.relay.host.ban(ban(bid, you["id"], seconds=60))
    await quiet.ws.close()
    again = await chat_node.viewer(bid, name="quiet", token=you["token"])
    await again.comment("can I?")
    assert (await again.expect("error"))["code"] == "banned"
    await watcher.comment("yes you can read")
    assert (await again.expect("comment"))["text"] == "yes you can read"


async def test_rate_limit_follows_the_identity_across_reconnects(bus_kind: str, tmp_path: Path,
                                                                 aiohttp_client: Any) -> None:
    node = await ChatNode(bus_kind, tmp_path, comment_rate=0.01, comment_burst=3).start(aiohttp_client)
    try:
        bid = (await node.create_broadcast())["id"]
        ann = await node.viewer(bid, name="ann")
        token = ann.events[0]["you"]["token"]
        for i in range(3):
            await ann.comment(f"c{i}")
        await ann.comments_until(3)
        await ann.comment("one too many")
        assert (await ann.expect("error"))["code"] == "rate_limited"
        await ann.ws.close()
        again = await node.viewer(bid, name="ann", token=token)  # a new socket does not refill the bucket
        await again.comment("after reconnecting")
        assert (await again.expect("error"))["code"] == "rate_limited"
        bob = await node.viewer(bid, name="bob")  # another identity has its own
        await bob.comment("bob's first")
        assert (await bob.expect("comment"))["text"] == "bob's first"
    finally:
        await node.cleanup()


async def test_sockets_past_the_address_quota_are_refused_others_unaffected(tmp_path: Path, aiohttp_client: Any,
                                                                           sources: Sources) -> None:
    limits = AddressLimits(max_sockets=4, join_rate=1.0, join_burst=6)
    node = await ChatNode("memory", tmp_path, address_limits=limits).start(aiohttp_client)
    bid = (await node.create_broadcast())["id"]
    url = node.ws_url(bid)
    crowd = [await sources.viewer(url, "127.0.0.2", name=f"new identity {i}") for i in range(4)]
    extra = await sources.socket(url, "127.0.0.2")
    err = await extra.expect("error")
    assert err["code"] == "too_many_sockets" and "network address" in err["message"]
    assert await extra.closed() == 4029
    # another address is not affected, and can still chat
    neighbours = [await sources.viewer(url, "127.0.0.3", name=f"n{i}") for i in range(4)]
    await neighbours[0].comment("hello from next door")
    assert (await crowd[0].expect("comment"))["text"] == "hello from next door"
    # a socket that closes frees its place
    await crowd[0].ws.close()
    await asyncio.sleep(0.1)
    crowd[0] = await sources.viewer(url, "127.0.0.2", name="back")
    # new sockets per second: 6 in a burst, then 1/s (5 taken above from .2; one more, then refused)
    await crowd[1].ws.close()
    await asyncio.sleep(0.1)
    crowd[1] = await sources.viewer(url, "127.0.0.2", name="sixth")
    await crowd[2].ws.close()
    await asyncio.sleep(0.1)
    seventh = await sources.socket(url, "127.0.0.2")
    assert (await seventh.expect("error"))["code"] == "too_many_joins"
    assert await seventh.closed() == 4029
    late = await sources.viewer(url, "127.0.0.4", name="other network")  # its own budget
    assert late.events[0]["type"] == "history"
    assert node.client.app  # (the node kept serving)


async def test_one_address_cannot_flood_reactions_with_many_identities(chat_node: ChatNode,
                                                                       sources: Sources) -> None:
    # the issue's case, with the default quotas: 40 sockets (each a new identity) from one address,
    # 60 reactions each; only the address's share is counted, while another address's count in full
    bid = (await chat_node.create_broadcast())["id"]
    url = chat_node.ws_url(bid)
    admitted: list[Viewer] = []
    refusals = 0
    for i in range(40):
        socket = await sources.socket(url, "127.0.0.2")
        await socket.send({"type": "hello", "name": f"sock{i}"})
        first = await socket.next()
        if first["type"] == "history":
            admitted.append(socket)
        else:
            assert first["code"] == "too_many_sockets" and await socket.closed() == 4029
            refusals += 1
    assert (len(admitted), refusals) == (32, 8)
    neighbour = await sources.viewer(url, "127.0.0.3", name="neighbour")
    started = time.monotonic()
    await asyncio.gather(*(v.send({"type": "react", "kind": "like"}) for v in admitted for _ in range(60)))
    await asyncio.gather(*(neighbour.send({"type": "react", "kind": "love"}) for _ in range(30)))
    totals = await settled_reactions(neighbour)
    elapsed = time.monotonic() - started  # the server refilled the address's bucket for at most this long
    limits = AddressLimits()
    assert totals["love"] == 30
    assert limits.react_burst <= totals["like"] <= limits.react_burst + limits.react_rate * elapsed
    # past the address's budget the sockets got rate_limited, and those that kept on were closed 1008
    closes = await asyncio.gather(*(close_code(v) for v in admitted))
    assert set(closes) <= {1008, None} and closes.count(1008) >= 16, closes
    assert all(e["code"] == "rate_limited" for v in admitted for e in v.errors())


async def close_code(viewer: Viewer, wait: float = 2.0) -> int | None:
    """The close code if the server closes the socket within ``wait`` seconds, else None."""
    try:
        return await viewer.closed(timeout=wait)
    except (AssertionError, asyncio.TimeoutError):
        return None


async def settled_reactions(viewer: Viewer, quiet: float = 1.5) -> dict[str, int]:
    """The reaction totals once no ``reactions`` event came for ``quiet`` seconds."""
    totals: dict[str, int] = {}
    while True:
        try:
            event = await viewer.expect("reactions", timeout=quiet)
        except (AssertionError, asyncio.TimeoutError):
            return totals
        totals = event["totals"]


async def test_reserved_and_taken_names(chat_node: ChatNode) -> None:
    bid = (await chat_node.create_broadcast())["id"]
    socket = Viewer(await chat_node.client.ws_connect(f"/ws/{bid}"))
    for name in ("host", "H0ST", "Ｈｏｓｔ", "h.o.s.t", "Moderator", "admin"):
        await socket.send({"type": "hello", "name": name})
        err = await socket.expect("error")
        assert err["code"] == "name_reserved" and "reserved" in err["message"], name
    history = await socket.hello(name="hostess")  # the same socket may try another name
    assert history["you"]["name"] == "hostess"


# --- through the host's moderation API -----------------------------------------------------------

async def test_host_extends_a_ban_to_the_viewers_address(mod_node: ModNode, sources: Sources) -> None:
    b = await mod_node.create_broadcast()
    bid, host = b["id"], b["host_token"]
    url = mod_node.ws_url(bid)
    troll = await sources.viewer(url, "127.0.0.2", name="troll")
    troll_id = troll.events[0]["you"]["id"]
    neighbour_same_net = await sources.viewer(url, "127.0.0.2", name="flatmate")
    elsewhere = await sources.viewer(url, "127.0.0.3", name="elsewhere")

    assert await mod_node.call("POST", mod_path(bid, "viewers/a_never_seen/ban"), host, {"address": True}) == \
        (409, {"error": "no network address is known for viewer 'a_never_seen' (it has not joined this chat recently)"})
    assert (await mod_node.call("POST", mod_path(bid, f"viewers/{troll_id}/ban"), host, {"address": "yes"}))[0] == 400
    status, doc = await mod_node.call("POST", mod_path(bid, f"viewers/{troll_id}/ban"), host,
                                      {"reason": "evading", "address": True})
    assert status == 200 and doc == {"viewer_id": troll_id, "banned": True, "address": True}
    # every socket from that address closes; a brand-new identity from it is refused; others stay
    for viewer in (troll, neighbour_same_net):
        assert (await viewer.expect("error"))["code"] == "banned"
        assert await viewer.closed() == 4003
    fresh = await sources.socket(url, "127.0.0.2")
    assert await refused(fresh, {"name": "totally new"}) == \
        ("banned", "your network address is banned from this chat", 4003)
    await elsewhere.comment("still here")
    assert (await elsewhere.expect("comment"))["text"] == "still here"
    # hosts see that the address is banned, never the address or its key
    status, bans = await mod_node.call("GET", mod_path(bid, "bans"), host)
    assert status == 200 and [(x["viewer_id"], x["address"]) for x in bans["bans"]] == [(troll_id, True)]
    assert "127.0.0.2" not in str(bans) and "address_key" not in bans["bans"][0]
    audit = (await mod_node.call("GET", mod_path(bid, "audit"), host))[1]["entries"]
    assert audit[-1]["action"] == "ban" and audit[-1]["detail"] == {"address": True}
    assert "127.0.0.2" not in str(audit)
    # unbanning the viewer lifts the address ban
    assert (await mod_node.call("DELETE", mod_path(bid, f"viewers/{troll_id}/ban"), host))[0] == 200
    back = await sources.viewer(url, "127.0.0.2", name="flatmate")
    assert back.events[0]["type"] == "history"


async def test_names_of_the_host_and_moderators_are_theirs(mod_node: ModNode) -> None:
    b = await mod_node.create_broadcast()
    bid, host = b["id"], b["host_token"]
    status, grant = await mod_node.call("POST", mod_path(bid, "moderators"), host, {"label": "Grace"})
    assert status == 201
    dana = await mod_node.viewer(bid, name="Dana")
    watcher = await mod_node.viewer(bid, name="watcher")

    # a viewer cannot take the host's or a moderator's name, however written
    socket = Viewer(await mod_node.client.ws_connect(f"/ws/{bid}"))
    for name in ("host", "HOST", "grace", "Grаce", "G r a c e"):  # (the 4th with a Cyrillic a)
        await socket.send({"type": "hello", "name": name})
        assert (await socket.expect("error"))["code"] == "name_reserved", name
    await socket.hello(name="Gracie")
    # nor be issued a token under one
    url = f"/api/broadcasts/{bid}/viewer-tokens"
    for name in ("Host", "grace"):
        status, doc = await mod_node.call("POST", url, host, {"name": name})
        assert status == 400 and "reserved" in doc["error"]

    # the host and the moderator post with their verified role
    _, host_token = await mod_node.call("POST", mod_path(bid, "chat-token"), host)
    _, grace_token = await mod_node.call("POST", mod_path(bid, "chat-token"), grant["token"])
    console = await mod_node.viewer(bid, token=host_token["token"])
    grace = await mod_node.viewer(bid, token=grace_token["token"])
    await console.comment("welcome")
    assert (await watcher.expect("comment"))["author"] == {"id": "console_host", "name": "host", "role": "host"}
    await grace.comment("be nice")
    author = (await watcher.expect("comment"))["author"]
    assert (author["name"], author["role"]) == ("Grace", "moderator")

    # a name that becomes a moderator's after its viewer joined cannot post any more
    status, _ = await mod_node.call("POST", mod_path(bid, "moderators"), host, {"label": "Dana"})
    assert status == 201
    await dana.comment("I am the real Dana")
    assert (await dana.expect("error"))["code"] == "name_reserved"
    await watcher.comment("marker")
    assert (await watcher.expect("comment"))["text"] == "marker"  # nothing from the viewer Dana came before it


async def test_slow_mode_rate_and_duplicates_follow_the_identity_to_another_node(tmp_path: Path,
                                                                                  aiohttp_client: Any) -> None:
    a, b = await mod_cluster(tmp_path, aiohttp_client)
    try:
        broadcast = await a.create_broadcast()
        bid, host = broadcast["id"], broadcast["host_token"]
        watcher = await b.viewer(bid, name="watcher")

        async def hop(viewer: Viewer, node: ModNode, text: str) -> dict[str, Any]:
            """Comment from ``viewer``, then move the identity to ``node``: the answer to ``text`` there."""
            await viewer.comment(text)
            await watcher.expect("comment", text=text)
            token = viewer.events[0]["you"]["token"]
            await viewer.ws.close()
            moved = await node.viewer(bid, name="hopper", token=token)
            await moved.comment(text.upper())  # (the same text for the duplicate check)
            return await moved.expect("error")

        ann = await a.viewer(bid, name="hopper")
        assert (await hop(ann, b, "same words"))["reason"] == "duplicate"

        assert (await a.call("PUT", mod_path(bid, "settings"), host, {"slow_mode_seconds": 60}))[0] == 200
        await asyncio.sleep(1.1)  # the settings cache's TTL has passed on B
        bob = await a.viewer(bid, name="hopper")
        assert (await hop(bob, b, "first of the minute"))["reason"] == "slow_mode"

        assert (await a.call("PUT", mod_path(bid, "settings"), host,
                             {"slow_mode_seconds": 0, "rate_limit_count": 1, "rate_limit_window": 60}))[0] == 200
        await asyncio.sleep(1.1)
        cy = await b.viewer(bid, name="hopper")
        err = await hop(cy, a, "one per minute")
        assert (err["code"], err["reason"]) == ("rejected", "rate_limited")
        # another identity is not affected
        other = await a.viewer(bid, name="other")
        await other.comment("one per minute")
        await watcher.expect("comment", text="one per minute", timeout=5)
    finally:
        await a.cleanup()
