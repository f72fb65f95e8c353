"""Issue 4 acceptance in real processes and headless Chromium: two nodes on one real Redis,
the host moderates in the console on node A, viewers watch on node B.

- a delete clicked in the console on A disappears from the watch page on B within 1 s
  (click time and removal time both read from Date.now() in pages of one browser on one
  machine: one clock);
- a ban clicked on A closes the viewer's chat on B, and refuses it after a reconnect with
  the same signed identity (viewer token).
"""

from __future__ import annotations

import json

import pytest

from moderation.filters.hate_model import hold_thresholds
from moderation.hatemodel import HateModel
from moderation.settings import Strictness
from tests.broadcaster.moderation_support import mod_nodes  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

#: the acceptance threshold (issue 4): click on A -> gone on B
MAX_REMOVAL_MS = 1000


def _viewer_token(node, bid: str, host_token: str, name: str, viewer_id: str) -> str:
    status, doc = node.request("POST", f"/api/broadcasts/{bid}/viewer-tokens",
                               {"name": name, "viewer_id": viewer_id}, token=host_token)
    assert status == 201, doc
    return doc["token"]


async def _open_watch(context, base: str, bid: str, token: str | None = None,
                      ready: str = "window.onairChat && window.onairChat.connected"):
    page = await context.new_page()
    await page.goto(f"{base}/watch/{bid}" + (f"#token={token}" if token else ""))
    await page.wait_for_function(f"() => {ready}", timeout=10_000)
    return page


def _comment_li(page, text: str):
    return page.locator("#comments li", has_text=text)


async def test_console_delete_and_ban_on_a_reach_viewers_on_b(mod_nodes, redis_url: str, browser,  # noqa: F811
                                                        record_property) -> None:
    node_a = mod_nodes(redis_url=redis_url, node_id="node-a")
    node_b = mod_nodes(redis_url=redis_url, node_id="node-b")
    b = node_a.create_broadcast("moderated")
    bid, host = b["id"], b["host_token"]
    token = _viewer_token(node_a, bid, host, "troll", "v_troll")

    context = await browser.new_context()
    try:
        console = await context.new_page()
        await console.goto(f"{node_a.base}/console/{bid}#token={host}")
        await console.wait_for_function(
            "() => window.onairConsole && window.onairConsole.connected", timeout=10_000)
        assert "token" not in console.url  # the fragment is taken off the address bar
        assert await console.locator("#actor").text_content() == "as host"

        author = await _open_watch(context, node_b.base, bid, token)
        watcher = await _open_watch(context, node_b.base, bid)

        # --- delete: click in the console on A, gone from the watch page on B ---------------------
        await author.evaluate("() => window.onairChat.send('please remove me')")
        li_b = _comment_li(watcher, "please remove me")
        await li_b.wait_for(timeout=5_000)
        comment_id = await li_b.get_attribute("data-comment-id")
        assert comment_id
        await watcher.evaluate("""([id]) => {
            window.removedAt = null;
            const list = document.getElementById('comments');
            const gone = () => !list.querySelector('li[data-comment-id="' + CSS.escape(id) + '"]');
            const observer = new MutationObserver(() => {
                if (gone() && window.removedAt === null) { window.removedAt = Date.now(); observer.disconnect(); }
            });
            observer.observe(list, { childList: true, subtree: true });
        }""", [comment_id])
        row = console.locator(f'#feed li[data-comment-id="{comment_id}"]')
        await row.wait_for(timeout=5_000)
        delete = row.locator("button.act-delete")
        # the click time as the page sees the click (capture phase: before the handler runs)
        await console.evaluate("""() => { window.clickedAt = null; document.addEventListener('click', () => {
            if (window.clickedAt === null) window.clickedAt = Date.now(); }, { capture: true, once: true }); }""")
        await delete.click()
        await watcher.wait_for_function(
            "() => window.removedAt !== null", timeout=5_000)
        clicked_at = await console.evaluate("() => window.clickedAt")
        removed_at = await watcher.evaluate("() => window.removedAt")
        latency_ms = removed_at - clicked_at
        record_property("click_to_removal_on_b_ms", latency_ms)
        print(f"\nconsole delete on node A -> removed from the watch page on node B: {latency_ms} ms")
        assert 0 <= latency_ms <= MAX_REMOVAL_MS, latency_ms
        assert await _comment_li(watcher, "please remove me").count() == 0
        await console.locator(f'#feed li.removed[data-comment-id="{comment_id}"]').wait_for(timeout=5_000)

        # --- ban: clicked on A, enforced on B (the socket closes), also on a reconnect with the same token ---
        await author.evaluate("() => window.onairChat.send('one more before the ban')")
        row = console.locator("#feed li", has_text="one more before the ban")
        await row.wait_for(timeout=5_000)
        assert await row.get_attribute("data-viewer-id") == "v_troll"
        await row.locator("button.act-ban").click()
        await console.locator("#bans li", has_text="v_troll").wait_for(timeout=5_000)

        await author.wait_for_function("() => window.onairChat.banned === true", timeout=5_000)
        await author.evaluate("() => window.onairChat.send('after the ban')")  # queued, never sent
        assert "banned" in await author.locator("#chat-status").text_content()
        await author.close()
        # a new socket with the same signed identity is refused
        again = await _open_watch(context, node_b.base, bid, token, ready="window.onairChat.banned === true")
        assert await again.evaluate("() => window.onairChat.you") is None
        await again.evaluate("() => window.onairChat.send('after reconnecting')")
        # nothing of it reached anyone
        await watcher.wait_for_timeout(300)
        texts = await watcher.locator("#comments li .text").all_text_contents()
        assert "after the ban" not in texts and "after reconnecting" not in texts
        assert "one more before the ban" in texts

        status, doc = node_b.request("GET", f"/api/broadcasts/{bid}/moderation/audit", token=host)
        assert status == 200
        assert [(e["action"], e["actor"]) for e in doc["entries"]] == [("delete_comment", "host"), ("ban", "host")]
        assert doc["entries"][0]["text"] == "please remove me"
    finally:
        await context.close()


async def test_console_shows_user_text_as_text_and_handles_held_queue(mod_nodes, browser) -> None:  # noqa: F811
    node = mod_nodes()
    b = node.create_broadcast("console")
    bid, host = b["id"], b["host_token"]
    # CSP bypassed on purpose: it would block an inline handler anyway; this checks that
    # console.js itself never turns user text into markup.
    context = await browser.new_context(bypass_csp=True)
    try:
        dialogs: list[str] = []
        console = await context.new_page()

        async def on_dialog(dialog) -> None:  # none may open: user text is never markup
            dialogs.append(dialog.message)
            await dialog.dismiss()
        console.on("dialog", on_dialog)
        await console.goto(f"{node.base}/console/{bid}")
        await console.locator("#login").wait_for()
        await console.fill("#login-token", "wrong")
        await console.click("#login button[type=submit]")
        await console.wait_for_function(
            "() => document.getElementById('login-error').textContent.length > 0")
        await console.fill("#login-token", host)
        await console.click("#login button[type=submit]")
        await console.wait_for_function(
            "() => window.onairConsole && window.onairConsole.connected", timeout=10_000)

        viewer = await _open_watch(context, node.base, bid)
        xss = "<img src=x onerror=alert(1)> nobody wants you here, idiot"
        await viewer.evaluate("([t]) => window.onairChat.send(t)", [xss])
        held = console.locator("#held li", has_text="nobody wants you here")
        await held.wait_for(timeout=5_000)
        assert await held.locator(".text").text_content() == xss
        await console.locator("#feed li.auto", has_text="held").wait_for(timeout=5_000)
        await held.locator("button.act-approve").click()
        await _comment_li(viewer, "nobody wants you here").wait_for(timeout=5_000)
        assert await _comment_li(viewer, "nobody wants you here").locator(".text").text_content() == xss
        await console.wait_for_function(
            "() => document.querySelectorAll('#held li').length === 0", timeout=5_000)

        # a censored comment is labelled as such in the feed (the audit log knows the verdict)
        await viewer.evaluate("() => window.onairChat.send('you are shit')")
        await console.locator("#feed li", has_text="you are ****").locator(".verdict-publish_censored") \
            .wait_for(timeout=5_000)

        # settings from the console apply to the next comment
        await console.fill("#s-blocked", "forbidden*")
        await console.click("#s-save")
        await console.wait_for_function(
            "() => document.getElementById('settings-status').textContent === 'saved'")
        status, settings = node.request("GET", f"/api/broadcasts/{bid}/moderation/settings", token=host)
        assert settings["blocked_terms"] == ["forbidden*"]
        await viewer.evaluate("() => window.onairChat.send('forbiddenword here')")
        await viewer.wait_for_function(
            "() => document.getElementById('chat-status').textContent.length > 0", timeout=5_000)
        assert await _comment_li(viewer, "forbiddenword").count() == 0
        # the audit table lists what happened, as text
        await console.locator("#audit tr", has_text="approve_held").wait_for(timeout=5_000)
        assert dialogs == []
        assert json.dumps(await console.locator("#audit").text_content()).count("set_settings") == 1
    finally:
        await context.close()


async def test_console_screenshot_shows_held_comment_with_language_and_reason(mod_nodes, browser, tmp_path,  # noqa: F811
                                                                               record_property) -> None:
    """A Polish comment (the host expects German and English) held by the hate model: the console's held
    queue shows its language and the rule behind it, and the audit log names them too (screenshot kept as a
    test artefact)."""
    node = mod_nodes()
    b = node.create_broadcast("multilingual")
    bid, host = b["id"], b["host_token"]
    status, _ = node.request("PUT", f"/api/broadcasts/{bid}/moderation/settings",
                             {"languages": ["de", "en"], "language_strictness": {"de": "high"}}, token=host)
    assert status == 200
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        console = await context.new_page()
        await console.goto(f"{node.base}/console/{bid}#token={host}")
        await console.wait_for_function(
            "() => window.onairConsole && window.onairConsole.connected", timeout=10_000)
        assert await console.locator("#s-languages").input_value() == "de en"
        assert await console.locator("#s-lang-strictness").input_value() == "de=high"
        viewer = await _open_watch(context, node.base, bid)
        text = "Imigranci to śmieci, trzeba ich wszystkich wyrzucić."  # Polish, though the host expects de/en
        await viewer.evaluate("([t]) => window.onairChat.send(t)", [text])
        held = console.locator("#held li", has_text="Imigranci")
        await held.wait_for(timeout=5_000)
        assert await held.locator(".lang").text_content() == "pl"
        assert await held.locator(".why").text_content() == " — hate_model: hate_speech"
        # the feed and the audit log name the language and the score behind the verdict
        auto = console.locator("#feed li.auto", has_text="Imigranci")
        await auto.wait_for(timeout=5_000)
        why = await auto.locator(".why").text_content()
        assert why.startswith(" — hate_model: hate_speech (pl, score 0.")
        await console.locator("#audit tr", has_text="auto_hold").wait_for(timeout=5_000)
        shot = tmp_path / "console-held-language.png"
        await console.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        record_property("screenshot", str(shot))
        status, doc = node.request("GET", f"/api/broadcasts/{bid}/moderation/audit", token=host)
        entry = next(e for e in doc["entries"] if e["action"] == "auto_hold")
        assert entry["filter"] == "hate_model" and entry["reason"] == "hate_speech"
        pl_hold_at = hold_thresholds(HateModel.load(), Strictness.MEDIUM, "pl")[0]  # Polish's own threshold
        assert entry["detail"]["language"] == "pl" and pl_hold_at <= entry["detail"]["score"] <= 1
    finally:
        await context.close()
