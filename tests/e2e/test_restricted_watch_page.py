"""The watch page and a restricted broadcast in Chromium (hls.js): its invitation link plays it; without
a grant the page says the broadcast is private or unknown; a revoked grant stops playback with a
message saying why."""

from __future__ import annotations

import pytest

from tests.support.playback import viewer_token
from tests.support.publish import ffmpeg_publish

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_the_invitation_link_plays_and_the_bare_page_explains(node_factory, chromium):
    node = node_factory(ladder="source")
    doc = node.create_broadcast("private rehearsal", visibility="restricted")
    publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=40, gop=25)
    node.wait_status(doc["id"], "live", timeout=15)
    invited = viewer_token(node, doc["id"], "Ann")
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(invited["watch_url"])
    page.wait_for_function("() => document.getElementById('state').textContent === 'LIVE'", timeout=15_000)
    page.wait_for_function("() => document.getElementById('video').currentTime > 1.0", timeout=30_000)
    first = page.evaluate("document.getElementById('video').currentTime")
    page.wait_for_function(f"() => document.getElementById('video').currentTime > {first + 1.0}", timeout=15_000)
    assert page.text_content("#title") == "private rehearsal"
    assert page.is_hidden("#notice")

    # The same page without the grant: a clear message, nothing played, nothing disclosed.
    bare = chromium.new_page()
    bare.goto(f"{node.base}/watch/{doc['id']}")
    bare.wait_for_selector("#notice", state="visible", timeout=15_000)
    assert "private" in bare.text_content("#notice") and "invitation" in bare.text_content("#notice")
    assert bare.text_content("#title") == "No such broadcast"
    assert bare.evaluate("document.getElementById('video').currentTime") == 0

    # The host revokes every invitation: the playing page stops and says why.
    host = {"Authorization": f"Bearer {doc['host_token']}"}
    status, result = node.request("POST", f"/api/broadcasts/{doc['id']}/moderation/revoke-viewer-tokens", {},
                                  token=None, headers=host)
    assert status == 200 and result["epoch"] == 1
    page.wait_for_selector("#notice", state="visible", timeout=15_000)
    assert "revoked" in page.text_content("#notice")
    stopped = page.evaluate("document.getElementById('video').currentTime")
    page.wait_for_timeout(2000)
    assert page.evaluate("document.getElementById('video').currentTime") == stopped
    assert errors == []
    page.close()
    bare.close()
    publisher.terminate()
    publisher.wait(timeout=30)
