"""The watch page's chat (player-demo/chat.js) in headless Chromium: user text is
shown as text, never run; removals, pins, questions, viewers and reactions show."""

from __future__ import annotations

import pytest

from broadcaster.chat.tokens import issue, verify_any
from tests.broadcaster.chat_support import ChatNode
from tests.support.bans import ban

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


async def test_comment_markup_is_shown_as_text(browser, tmp_path, aiohttp_client) -> None:
    node = await ChatNode("memory", tmp_path).start(aiohttp_client)
    b = await node.create_broadcast()
    # CSP bypassed on purpose: the page's CSP would block an inline onerror anyway;
    # without it this checks that chat.js itself never turns text into markup.
    context = await browser.new_context(bypass_csp=True)
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    await page.goto(f"http://127.0.0.1:{node.client.port}/watch/{b['id']}")
    await page.wait_for_function("window.onairChat && window.onairChat.connected")
    await page.evaluate("([t]) => window.onairChat.send(t)", [XSS])
    li = page.locator("#comments li").first
    await li.wait_for()
    assert await li.locator(".text").text_content() == XSS
    assert (await li.text_content()).endswith(XSS)
    # the same from another viewer through the server, as a question
    other = await node.viewer(b["id"], name=XSS)
    await other.comment(XSS + "<script>alert(2)</script>", question=True)
    second = page.locator("#comments li").nth(1)
    await second.wait_for()
    assert await second.locator(".text").text_content() == XSS + "<script>alert(2)</script>"
    assert await second.locator(".author").text_content() == XSS
    assert await second.get_attribute("class") == "question"
    await page.wait_for_timeout(300)  # give a would-be onerror handler its chance
    assert await page.evaluate("document.querySelectorAll('img:not(#waiting-poster), #comments script').length") == 0
    assert dialogs == []

    # removal everywhere: the element goes away by data-comment-id
    comment_id = await second.get_attribute("data-comment-id")
    await node.relay.host.remove_comment(b["id"], comment_id)
    await page.wait_for_function("(id) => !document.querySelector(`li[data-comment-id='${id}']`)", arg=comment_id)
    assert await page.locator("#comments li").count() == 1

    # pinned, viewers, reactions
    first_id = await li.get_attribute("data-comment-id")
    await node.relay.host.set_pinned(b["id"], {"id": first_id, "text": XSS, "author": {"id": "v", "name": "host"}})
    await page.wait_for_function("!document.getElementById('pinned').hidden")
    assert (await page.locator("#pinned").text_content()).endswith(XSS)
    await page.wait_for_function("document.getElementById('viewers').textContent === '2 viewers'")
    assert await page.locator("#reaction-bar button").count() == 5
    await page.click("#reaction-bar button[data-kind=love]")
    await page.wait_for_function("(window.onairChat.totals.love || 0) === 1")
    assert await page.locator("#reaction-layer .floating-reaction").count() >= 1
    assert dialogs == []
    await context.close()


async def test_watch_page_keeps_its_anonymous_identity(browser, tmp_path, aiohttp_client) -> None:
    node = await ChatNode("memory", tmp_path).start(aiohttp_client)
    bid = (await node.create_broadcast())["id"]
    url = f"http://127.0.0.1:{node.client.port}/watch/{bid}"
    context = await browser.new_context(bypass_csp=True)  # (for wait_for_function's string predicates)
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function("window.onairChat && window.onairChat.connected")
    you = await page.evaluate("window.onairChat.you")
    assert you["id"].startswith("a_")
    assert await page.evaluate(f"localStorage.getItem('onair-identity:{bid}')") == you["token"]

    # a reload, and a second tab, present the kept identity: the same viewer, counted once
    await page.reload()
    await page.wait_for_function("window.onairChat && window.onairChat.connected")
    assert (await page.evaluate("window.onairChat.you"))["id"] == you["id"]
    tab = await context.new_page()
    await tab.goto(url)
    await tab.wait_for_function("window.onairChat && window.onairChat.connected")
    assert (await tab.evaluate("window.onairChat.you"))["id"] == you["id"]
    await tab.wait_for_function("document.getElementById('viewers').textContent === '1 viewer'")
    watcher = await node.viewer(bid, name="watcher")  # (before the comment: it comes live, not in history)
    await page.evaluate("window.onairChat.send('from the page')")
    comment = await watcher.expect("comment", text="from the page")
    assert comment["author"]["id"] == you["id"]
    # another browser profile is another viewer
    other = await (await browser.new_context(bypass_csp=True)).new_page()
    await other.goto(url)
    await other.wait_for_function("window.onairChat && window.onairChat.connected")
    assert (await other.evaluate("window.onairChat.you"))["id"] != you["id"]

    # banned: every tab says so and stops reconnecting; a reload does not make a new viewer of it
    await node.relay.host.ban(ban(bid, you["id"]))
    for p in (page, tab):
        await p.wait_for_function("window.onairChat.banned === true")
        assert await p.locator("#chat-status").text_content() == "You are banned from this chat."
    await page.reload()
    await page.wait_for_function("window.onairChat && window.onairChat.banned === true")
    kept = await page.evaluate(f"localStorage.getItem('onair-identity:{bid}')")
    assert verify_any(node.relay.secret, kept, bid).viewer_id == you["id"]  # (re-issued on each hello)
    await context.close()


async def test_watch_page_cannot_use_the_hosts_name_and_shows_roles(browser, tmp_path, aiohttp_client) -> None:
    node = await ChatNode("memory", tmp_path).start(aiohttp_client)
    b = await node.create_broadcast()
    context = await browser.new_context(bypass_csp=True)
    await context.add_init_script("localStorage.setItem('onair-name', 'Host')")
    page = await context.new_page()
    await page.goto(f"http://127.0.0.1:{node.client.port}/watch/{b['id']}")
    await page.wait_for_function("window.onairChat && window.onairChat.connected")
    name = (await page.evaluate("window.onairChat.you"))["name"]
    assert name.startswith("guest-")  # joined under a guest name instead
    assert "reserved" in await page.locator("#chat-status").text_content()
    # the host's own comment carries the verified role, shown as a badge
    host = await node.viewer(b["id"], token=issue(node.relay.secret, b["id"], "console_host", "host", role="host"))
    await host.comment("welcome everyone")
    li = page.locator("#comments li.by-host")
    await li.wait_for()
    assert await li.locator(".role").text_content() == "HOST"
    assert await li.locator(".text").text_content() == "welcome everyone"
    await context.close()
