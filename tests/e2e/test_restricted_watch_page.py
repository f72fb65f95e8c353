"""The watch page and a restricted broadcast in Chromium (hls.js): its invitation link plays it; without
a grant the page says the broadcast is private or unknown; a revoked grant stops playback with a
message saying why."""

from __future__ import annotations

import pytest

from tests.support.playback import viewer_token
from tests.support.publish import ffmpeg_publish
from tests.support.watch import VIDEO_TIME, open_watch_page, wait_playing_live

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_the_invitation_link_plays_and_the_bare_page_explains(node_factory, chromium):
    node = node_factory(ladder="source")
    doc = node.create_broadcast("private rehearsal", visibility="restricted")
    publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=40, gop=25)
    node.wait_status(doc["id"], "live", timeout=15)
    invited = viewer_token(node, doc["id"], "Ann")
    page, errors = open_watch_page(chromium, invited["watch_url"])
    wait_playing_live(page)
    assert page.text_content("#title") == "private rehearsal"
    assert page.is_hidden("#notice")

    # The same page without the grant: a clear message, nothing played, nothing disclosed.
    bare = chromium.new_page()
    bare.goto(f"{node.base}/watch/{doc['id']}")
    bare.wait_for_selector("#notice", state="visible", timeout=15_000)
    assert "private" in bare.text_content("#notice") and "invitation" in bare.text_content("#notice")
    assert bare.text_content("#title") == "No such broadcast"
    assert bare.evaluate(VIDEO_TIME) == 0

    # The host revokes every invitation: the playing page stops and says why.
    host = {"Authorization": f"Bearer {doc['host_token']}"}
    status, result = node.request("POST", f"/api/broadcasts/{doc['id']}/moderation/revoke-viewer-tokens", {},
                                  token=None, headers=host)
    assert status == 200 and result["epoch"] == 1
    page.wait_for_selector("#notice", state="visible", timeout=15_000)
    assert "revoked" in page.text_content("#notice")
    stopped = page.evaluate(VIDEO_TIME)
    page.wait_for_timeout(2000)
    assert page.evaluate(VIDEO_TIME) == stopped
    assert errors == []
    page.close()
    bare.close()
    publisher.terminate()
    publisher.wait(timeout=30)
