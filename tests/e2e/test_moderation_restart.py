"""Issue 4 acceptance in real processes: a comment held for review survives a restart of the
(embedded, SQLite) node and can be approved afterwards; it then reaches viewers.  Bans,
settings and the audit log survive too.  And erasure across two nodes on one Redis."""

from __future__ import annotations

import aiohttp
import pytest

from tests.broadcaster.chat_support import Viewer, connect
from tests.broadcaster.moderation_support import mod_nodes  # noqa: F401

pytestmark = pytest.mark.e2e

HARASSMENT = "nobody wants you here, idiot"


async def test_held_comment_survives_a_restart_and_is_approved_after(mod_nodes, tmp_path) -> None:  # noqa: F811
    data_dir = tmp_path / "embedded"
    node = mod_nodes(data_dir=data_dir)
    b = node.create_broadcast("restart")
    bid, host = b["id"], b["host_token"]
    status, _ = node.request("PUT", f"/api/broadcasts/{bid}/moderation/settings", {"blocked_terms": ["zzz*"]},
                             token=host)
    assert status == 200
    async with aiohttp.ClientSession() as session:
        author = await connect(f"{node.ws_base}/ws/{bid}", session, name="author")
        await author.comment(HARASSMENT)
        held = await author.expect("error", code="held_for_review")
        status, doc = node.request("POST", f"/api/broadcasts/{bid}/moderation/viewers/v_banned/ban", {}, token=host)
        assert status == 200
        await author.ws.close()

    assert node.stop() == 0
    node = mod_nodes(data_dir=data_dir)  # a new process on the same data dir

    status, doc = node.request("GET", f"/api/broadcasts/{bid}/moderation/held", token=host)
    assert status == 200 and [(h["held_id"], h["text"]) for h in doc["held"]] == [(held["held_id"], HARASSMENT)]
    assert node.request("GET", f"/api/broadcasts/{bid}/moderation/settings", token=host)[1]["blocked_terms"] == ["zzz*"]
    assert [x["viewer_id"] for x in node.request("GET", f"/api/broadcasts/{bid}/moderation/bans",
                                                   token=host)[1]["bans"]] == ["v_banned"]
    async with aiohttp.ClientSession() as session:
        watcher = await connect(f"{node.ws_base}/ws/{bid}", session, name="watcher")
        status, doc = node.request("POST", f"/api/broadcasts/{bid}/moderation/held/{held['held_id']}/approve",
                                   token=host)
        assert status == 200, doc
        comment = await watcher.expect("comment")
        assert comment["text"] == HARASSMENT and comment["author"]["name"] == "author"
        # and a newcomer gets it in its history
        newcomer = await connect(f"{node.ws_base}/ws/{bid}", session, name="newcomer")
        assert [c["text"] for c in newcomer.events[0]["comments"]] == [HARASSMENT]
        # the ban made before the restart is still enforced by the (in-memory) chat
        status, tok = node.request("POST", f"/api/broadcasts/{bid}/viewer-tokens",
                                   {"name": "banned", "viewer_id": "v_banned"}, token=host)
        assert status == 201
        banned = Viewer(await session.ws_connect(f"{node.ws_base}/ws/{bid}"))
        await banned.send({"type": "hello", "token": tok["token"]})
        assert (await banned.expect("error"))["code"] == "banned"
        assert await banned.closed() == 4003
        for v in (watcher, newcomer):
            await v.ws.close()
    status, doc = node.request("GET", f"/api/broadcasts/{bid}/moderation/audit", token=host)
    assert [e["action"] for e in doc["entries"]] == ["set_settings", "auto_hold", "ban", "approve_held"]


async def test_erasure_on_one_node_clears_screens_history_and_export_on_the_other(mod_nodes, redis_url) -> None:  # noqa: F811
    node_a = mod_nodes(redis_url=redis_url, node_id="node-a")
    node_b = mod_nodes(redis_url=redis_url, node_id="node-b")
    b = node_a.create_broadcast("gdpr")
    bid, host = b["id"], b["host_token"]
    status, tok = node_a.request("POST", f"/api/broadcasts/{bid}/viewer-tokens",
                                 {"name": "subject", "viewer_id": "v_subject"}, token=host)
    assert status == 201
    async with aiohttp.ClientSession() as session:
        subject = await connect(f"{node_a.ws_base}/ws/{bid}", session, token=tok["token"])
        other = await connect(f"{node_b.ws_base}/ws/{bid}", session, name="other")
        await subject.comment("my words")
        mine = await other.expect("comment", text="my words")
        await other.comment("their words")
        await other.expect("comment", text="their words")
        await subject.comment(HARASSMENT)  # held: its text is in the audit log
        await subject.expect("error", code="held_for_review")
        status, export = node_b.request("GET", "/api/viewers/v_subject/export")
        assert status == 200 and [c["text"] for c in export["comments"]] == ["my words", HARASSMENT]

        status, result = node_b.request("POST", "/api/viewers/v_subject/erase")
        assert status == 200 and result["removed_comments"] == [mine["id"]]
        await other.expect("comment_removed", id=mine["id"])
        joiner = await connect(f"{node_a.ws_base}/ws/{bid}", session, name="joiner")
        assert [c["text"] for c in joiner.events[0]["comments"]] == ["their words"]
        assert node_a.request("GET", "/api/viewers/v_subject/export")[1]["comments"] == []
        status, audit = node_a.request("GET", f"/api/broadcasts/{bid}/moderation/audit", token=host)
        assert all(e["text"] is None for e in audit["entries"] if e["viewer_id"] == "v_subject")
        assert any(e["action"] == "auto_hold" for e in audit["entries"])
        assert not {"my words", HARASSMENT} & {e["text"] for e in audit["entries"]}
        assert node_a.request("GET", f"/api/broadcasts/{bid}/moderation/held", token=host)[1] == {"held": []}
        for v in (subject, other, joiner):
            await v.ws.close()
