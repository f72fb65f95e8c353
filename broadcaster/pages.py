"""The web pages of ``player-demo/``: the studio (``/``), watch, go-live and console, plus their static files.

In the source tree they are ``player-demo/`` at the top of the repository; a wheel installs them as package
data in ``broadcaster/player_demo/`` (``setup.py`` maps the one onto the other)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

_INSTALLED = Path(__file__).resolve().parent / "player_demo"
PAGES_DIR = _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parent.parent / "player-demo"

_SECURITY_HEADERS = {
    # Everything the pages need is served by this node; no inline script.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; media-src 'self' blob:; connect-src 'self' ws: wss:; "
                               "worker-src 'self' blob:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _page(name: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGES_DIR / name, headers={**_SECURITY_HEADERS, "Cache-Control": "no-cache"})
    return handler


def add_routes(app: web.Application) -> None:
    app.router.add_get("/watch/{id}", _page("watch.html"))
    app.router.add_get("/golive/{id}", _page("golive.html"))
    app.router.add_get("/console/{id}", _page("console.html"))
    app.router.add_get("/", _page("studio.html"))
    app.router.add_static("/static/", PAGES_DIR, show_index=False, follow_symlinks=False)
