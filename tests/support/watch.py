"""The watch page in Chromium (Playwright, sync API): open it and wait until hls.js plays."""

from __future__ import annotations

from typing import Any

VIDEO_TIME = "document.getElementById('video').currentTime"


def open_watch_page(chromium: Any, url: str) -> tuple[Any, list[str]]:
    """A new page on ``url``, and the list its uncaught script errors go to."""
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return page, errors


def wait_playing_live(page: Any) -> None:
    """The page shows LIVE and its video time passes 1 s, then advances by another second."""
    page.wait_for_function("() => document.getElementById('state').textContent === 'LIVE'", timeout=15_000)
    page.wait_for_function(f"() => {VIDEO_TIME} > 1.0", timeout=30_000)
    first = page.evaluate(VIDEO_TIME)
    page.wait_for_function(f"() => {VIDEO_TIME} > {first + 1.0}", timeout=15_000)
