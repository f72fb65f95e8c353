"""The watch page plays a live broadcast in headless Chromium."""

from __future__ import annotations

import pytest

from tests.support.publish import ffmpeg_publish

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_watch_page_plays_live_and_recovers_after_reconnect(node_factory, chromium):
    node = node_factory(reconnect_grace=20, ladder="source")
    doc = node.create_broadcast("browser")
    publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=12)
    node.wait_status(doc["id"], "live", timeout=15)
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(doc["watch_url"])
    page.wait_for_function("() => document.getElementById('state').textContent === 'LIVE'", timeout=15_000)
    page.wait_for_function("() => document.getElementById('video').currentTime > 1.0", timeout=30_000)
    first = page.evaluate("document.getElementById('video').currentTime")
    page.wait_for_function(f"() => document.getElementById('video').currentTime > {first + 1.0}", timeout=15_000)
    assert page.text_content("#title") == "browser"
    # The broadcaster drops and comes back: the page says so and plays again.
    publisher.wait(timeout=30)
    page.wait_for_function("() => document.getElementById('state').textContent.startsWith('reconnecting')",
                           timeout=15_000)
    second = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=12)
    page.wait_for_function("() => document.getElementById('state').textContent === 'LIVE'", timeout=15_000)
    resumed = page.evaluate("document.getElementById('video').currentTime")
    page.wait_for_function(f"() => document.getElementById('video').currentTime > {resumed + 2.0}", timeout=40_000)
    second.wait(timeout=30)
    assert errors == []
    page.close()
