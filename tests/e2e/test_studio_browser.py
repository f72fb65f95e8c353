"""The studio end to end in Chromium: sign in, schedule a broadcast with a poster, a viewer waits in the
waiting room (countdown, chat open), ffmpeg publishes, the waiting room turns into the video without a
reload, the live health charts move (and warn about a keyframe interval longer than the segment target),
the host ends it and finds the replay.  Screenshots go to ``test-artifacts/studio/`` (gitignored)."""

from __future__ import annotations

import re
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.support.node import ADMIN_TOKEN
from tests.support.publish import ffmpeg_publish

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "studio"


def png_poster(path: Path) -> Path:
    gradient = np.zeros((360, 640, 3), dtype=np.uint8)
    gradient[:, :, 0] = np.linspace(0, 255, 640, dtype=np.uint8)[None, :]
    gradient[:, :, 2] = 160
    context = av.CodecContext.create("png", "w")
    context.width, context.height, context.pix_fmt, context.time_base = 640, 360, "rgb24", Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(gradient, format="rgb24")
    frame.pts = 0
    path.write_bytes(b"".join(bytes(p) for p in [*context.encode(frame), *context.encode(None)]))
    return path


def shot(page, name: str, *required: str) -> Path:
    """A screenshot, after checking the elements it is meant to show are visible."""
    for selector in required:
        assert page.locator(selector).first.is_visible(), f"{selector} not visible for {name}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    return path


def points(page, chart: str) -> str:
    return page.get_attribute(f"#chart-{chart} polyline", "points") or ""


def test_studio_schedule_wait_go_live_health_end_replay(node_factory, chromium, ffmpeg, tmp_path):
    node = node_factory(ladder="source", segment_target=1)
    errors: list[str] = []
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=node.base)
    studio = context.new_page()
    studio.on("pageerror", lambda exc: errors.append(str(exc)))
    studio.on("dialog", lambda dialog: dialog.accept())

    # sign in: a wrong token is refused with a message, the admin token opens the studio
    studio.goto(node.base + "/")
    studio.fill("#login-token", "wrong_token_wrong_token_wrong")
    studio.click("#login button[type=submit]")
    studio.wait_for_function("() => document.getElementById('login-error').textContent.includes('neither')")
    studio.fill("#login-token", ADMIN_TOKEN)
    studio.click("#login button[type=submit]")
    studio.wait_for_selector("#studio:not([hidden])")

    # schedule a broadcast an hour from now, with a poster
    studio.click("#create-box summary")
    studio.fill("#new-title", "Quarterly launch")
    studio.fill("#new-description", "Product news, then questions from the audience.")
    start = studio.evaluate("""() => { const d = new Date(Date.now() + 3600e3); d.setSeconds(0, 0);
        const p = (n) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
               `${p(d.getHours())}:${p(d.getMinutes())}`; }""")
    studio.fill("#new-start", start)
    studio.set_input_files("#new-poster", str(png_poster(tmp_path / "poster.png")))
    studio.click("#create-form button[type=submit]")
    studio.wait_for_function("() => document.getElementById('d-title').textContent === 'Quarterly launch'")
    studio.wait_for_function("() => { const i = document.getElementById('d-poster'); "
                             "return !i.hidden && i.naturalWidth === 640; }")
    assert studio.text_content("#d-status") == "scheduled"
    assert studio.locator("#list-scheduled button", has_text="Quarterly launch").count() == 1
    broadcast_id = studio.evaluate("() => window.onairStudio.selected")
    doc = node.broadcast(broadcast_id)
    assert doc["scheduled_start"] and 3500 < doc["scheduled_start"] - time.time() < 3700
    # the key is hidden until revealed
    assert studio.get_attribute("#d-key", "type") == "password"
    studio.click("#reveal-key")
    assert studio.get_attribute("#d-key", "type") == "text"
    assert studio.input_value("#d-key") == doc["stream_key"]
    assert studio.input_value("#d-server") == doc["rtmp_url"] and studio.input_value("#d-whip") == doc["whip_url"]
    studio.click("#reveal-key")
    # copy buttons put the value on the clipboard
    studio.click("button[data-copy=d-server]")
    studio.wait_for_function("() => document.getElementById('d-message').textContent === 'copied'")
    assert studio.evaluate("() => navigator.clipboard.readText()") == doc["rtmp_url"]
    # rotate the key: the studio shows the new one (the publish below uses it)
    studio.click("#rotate-key")
    studio.wait_for_function("() => document.getElementById('d-message').textContent === 'new stream key issued'")
    stream_key = studio.input_value("#d-key")
    assert stream_key != doc["stream_key"] and stream_key == node.broadcast(broadcast_id)["stream_key"]
    assert studio.get_attribute("#d-key", "type") == "password"
    # search narrows the list
    studio.fill("#search", "nothing like it")
    assert studio.locator("#lists li").count() == 0
    studio.fill("#search", "quarterly")
    assert studio.locator("#lists li").count() == 1
    shot(studio, "1-studio-scheduled", "#d-poster", "#d-title", "#list-scheduled")

    # a viewer opens the watch page: the waiting room, a countdown, the chat open
    watch = chromium.new_page(viewport={"width": 1280, "height": 800})
    watch.on("pageerror", lambda exc: errors.append(str(exc)))
    watch.goto(doc["watch_url"])
    watch.wait_for_selector("#waiting:not([hidden])")
    watch.wait_for_function("() => /^Starts in \\d\\d:\\d\\d:\\d\\d$/"
                            ".test(document.getElementById('countdown').textContent)")
    first = watch.text_content("#countdown")
    watch.wait_for_function(f"() => document.getElementById('countdown').textContent !== {first!r}", timeout=5000)
    assert watch.text_content("#waiting-title") == "Quarterly launch"
    assert "questions from the audience" in watch.text_content("#waiting-description")
    watch.wait_for_function("() => document.getElementById('waiting-poster').naturalWidth === 640")
    watch.wait_for_function("() => window.onairChat && window.onairChat.connected")
    watch.fill("#comment-text", "hello from the waiting room")
    watch.click("#comment-form button[type=submit]")
    watch.wait_for_function("() => document.getElementById('comments').textContent"
                            ".includes('hello from the waiting room')")
    # the reaction bar is SVG, no emoji
    assert watch.locator("#reaction-bar button svg").count() == 5
    assert re.fullmatch(r"[\x00-\x7f]*", watch.text_content("#reaction-bar")), "emoji in the reaction bar"
    watch.click("#reaction-bar button[data-kind=love]")
    watch.wait_for_selector("#reaction-layer .floating-reaction svg")
    shot(watch, "2-waiting-room", "#waiting", "#countdown", "#waiting-poster", "#comments li")
    watch.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads

    # publish with ffmpeg, keyframes every 2 s against a 1 s segment target
    publisher = ffmpeg_publish(node.rtmp_url(stream_key), seconds=40, gop=50)
    try:
        node.wait_status(broadcast_id, "live", timeout=20)
        watch.wait_for_selector("#waiting", state="hidden", timeout=15_000)
        watch.wait_for_function("() => document.getElementById('video').currentTime > 1.0", timeout=30_000)
        assert watch.evaluate("() => window.__sameDocument") is True
        assert watch.text_content("#state") == "LIVE"
        shot(watch, "3-watch-live", "#video")

        # the studio shows it live, with health charts that move every second
        studio.wait_for_function("() => document.getElementById('d-status').textContent === 'LIVE'", timeout=10_000)
        studio.wait_for_function("() => (document.querySelector('#chart-ingest-bitrate polyline')"
                                 ".getAttribute('points') || '').split(' ').length >= 3", timeout=15_000)
        before = points(studio, "ingest-bitrate")
        studio.wait_for_function(f"() => document.querySelector('#chart-ingest-bitrate polyline')"
                                 f".getAttribute('points') !== {before!r}", timeout=5000)
        assert points(studio, "fps") and points(studio, "transcoder-speed")
        studio.wait_for_function("() => document.querySelector('#chart-keyframe-interval .value')"
                                 ".textContent === '2.0 s'", timeout=10_000)
        studio.wait_for_selector("#warnings li[data-code=keyframe_interval]", timeout=10_000)
        assert "longer than the segment target 1 s" in studio.text_content("#warnings")
        bitrate = studio.text_content("#chart-ingest-bitrate .value")
        assert re.fullmatch(r"\d+\.\d\d Mbit/s", bitrate) and float(bitrate.split()[0]) > 0
        assert studio.text_content("#chart-viewers .value") in ("1", "2")
        shot(studio, "4-studio-live-health", "#charts", "#warnings li", "#chart-ingest-bitrate polyline")

        # end it from the studio
        studio.click("#end-broadcast")
        studio.wait_for_function("() => document.getElementById('d-status').textContent === 'ended'", timeout=20_000)
    finally:
        publisher.kill()
        publisher.wait()
    assert node.broadcast(broadcast_id)["status"] == "ended"

    # find the recording: the broadcast is under Ended, with its MP4 once made and the replay on its watch page
    studio.wait_for_function("() => document.querySelectorAll('#list-ended button').length === 1", timeout=10_000)
    studio.wait_for_selector("#link-recording", timeout=30_000)
    mp4 = studio.get_attribute("#link-recording", "href")
    assert mp4 == f"{node.base}/recordings/{broadcast_id}/recording.mp4"
    with urllib.request.urlopen(mp4, timeout=10) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "video/mp4"
        assert response.read(12)[4:8] == b"ftyp"
    replay_link = studio.get_attribute("#link-watch", "href")
    assert studio.text_content("#link-watch") == "Replay (watch page)" and replay_link == doc["watch_url"]
    shot(studio, "5-studio-ended", "#list-ended", "#link-watch", "#link-recording")
    replay = chromium.new_page(viewport={"width": 1280, "height": 800})
    replay.goto(replay_link)
    replay.wait_for_function("() => document.getElementById('state').textContent === 'ended (replay)'", timeout=10_000)
    replay.wait_for_function("() => document.getElementById('video').currentTime > 0.5", timeout=30_000)
    assert replay.locator("#waiting").is_hidden()
    shot(replay, "6-replay", "#video")
    assert errors == []


def test_a_host_token_opens_its_own_broadcast_only(node, chromium):
    mine = node.create_broadcast("Mine")
    node.create_broadcast("Someone else's")
    status, target = node.request("POST", f"/api/broadcasts/{mine['id']}/simulcast",
                                  {"url": "rtmp://127.0.0.1:1/live", "stream_key": "k" * 24, "name": "Elsewhere"})
    assert status == 201, target
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(node.base + "/")
    page.fill("#login-token", mine["host_token"])
    page.click("#login button[type=submit]")
    page.wait_for_function("() => document.getElementById('d-title').textContent === 'Mine'")
    assert page.locator("#lists li").count() == 1
    assert page.locator("#create-box").is_hidden() and page.locator("#rotate-key").is_hidden()
    assert page.locator("#reveal-key").is_disabled()  # the stream key stays with the admin
    assert "live_" not in page.content()
    assert page.locator("#end-broadcast").is_visible()  # a host may end its broadcast
    # its simulcast targets are listed (never their keys)
    page.wait_for_selector(f"#simulcast li[data-target='{target['id']}']")
    assert "Elsewhere" in page.text_content("#simulcast") and "k" * 24 not in page.content()
    # ... and edit its details: a new title and a schedule
    page.click("#edit-box summary")
    assert page.input_value("#edit-title") == "Mine"
    page.fill("#edit-title", "Mine, rescheduled")
    page.fill("#edit-start", page.evaluate("""() => { const d = new Date(Date.now() + 30 * 86400e3);
        const p = (n) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T10:00`; }"""))
    page.click("#edit-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('d-title').textContent === 'Mine, rescheduled'")
    assert page.text_content("#d-schedule").startswith("starts ")
    doc = node.broadcast(mine["id"])
    assert doc["title"] == "Mine, rescheduled" and 29 * 86400 < doc["scheduled_start"] - time.time() < 31 * 86400
    # the token is kept for the tab only; signing out forgets it
    page.reload()
    page.wait_for_function("() => document.getElementById('d-title').textContent === 'Mine, rescheduled'")
    page.click("#sign-out")
    page.wait_for_selector("#login:not([hidden])")
    assert page.evaluate("() => sessionStorage.getItem('onair-studio-token')") is None
    assert errors == []
