"""The watch page plays a live broadcast in headless Chromium."""

from __future__ import annotations

import pytest

from tests.support.publish import ffmpeg_publish
from tests.support.watch import open_watch_page, wait_playing_live

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_watch_page_plays_live_and_recovers_after_reconnect(node_factory, chromium):
    node = node_factory(reconnect_grace=20, ladder="source")
    doc = node.create_broadcast("browser")
    publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=12)
    node.wait_status(doc["id"], "live", timeout=15)
    page, errors = open_watch_page(chromium, doc["watch_url"])
    wait_playing_live(page)
    assert page.text_content("#title") == "browser"
    # The broadcaster drops (stopped once the page plays) and comes back: the page says so and plays again.
    publisher.terminate()
    publisher.wait(timeout=30)
    page.wait_for_function("() => document.getElementById('state').textContent.startsWith('reconnecting')",
                           timeout=15_000)
    second = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=12)
    page.wait_for_function("() => document.getElementById('state').textContent === 'LIVE'", timeout=15_000)
    resumed = page.evaluate("document.getElementById('video').currentTime")
    page.wait_for_function(f"() => document.getElementById('video').currentTime > {resumed + 2.0}", timeout=40_000)
    second.terminate()  # it played again: the rest of the publish shows nothing more
    second.wait(timeout=30)
    assert errors == []
    page.close()


def test_watch_page_plays_ll_hls_in_low_latency_mode_and_shows_the_latency(node_factory, chromium):
    node = node_factory(ladder="source,360p")  # hls_variant defaults to lowlatency
    doc = node.create_broadcast("low latency")
    publisher = ffmpeg_publish(node.rtmp_url(doc["stream_key"]), seconds=14, gop=25)
    node.wait_status(doc["id"], "live", timeout=15)
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(doc["watch_url"])
    page.wait_for_function("() => document.getElementById('video').currentTime > 1.0", timeout=30_000)
    # hls.js loaded playlists with parts and plays in low-latency mode, aiming at PART-HOLD-BACK
    page.wait_for_function("() => window.onairPlayer.lowLatency === true", timeout=10_000)
    state = page.evaluate("""() => {
        const hls = window.onairPlayer.hls;
        const details = hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : 0].details;
        return {lowLatencyMode: hls.lowLatencyMode, partHoldBack: details.partHoldBack,
                canBlockReload: details.canBlockReload, partTarget: details.partTarget,
                audioTracks: hls.audioTracks.length, targetLatency: hls.targetLatency};
    }""")
    assert state["lowLatencyMode"] is True and state["canBlockReload"] is True
    assert state["partTarget"] == 0.5 and state["partHoldBack"] == 1.5
    assert state["targetLatency"] == 1.5
    assert state["audioTracks"] == 1  # the shared audio rendition
    # the page shows the live latency hls.js measures
    page.wait_for_function("() => /^latency \\d+\\.\\d s · LL-HLS$/.test(document.getElementById('latency').textContent)",
                           timeout=10_000)
    shown = float(page.text_content("#latency").split()[1])
    assert 0 < shown < 30
    # and the API reports the node's publish-to-playlist delay
    delay = node.broadcast(doc["id"])["live"]["publish_to_playlist"]
    assert delay["p50"] is not None and 0 < delay["p50"] <= delay["max"]
    publisher.terminate()  # everything is checked: the rest of the publish shows nothing more
    publisher.wait(timeout=30)
    assert errors == []
    page.close()
