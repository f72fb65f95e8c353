"""A real HTTP receiver for webhooks: an aiohttp server on loopback, in a thread of its own.

It records every request (headers and raw body) and answers with the next
status of ``script`` (then 200), so a test can make it fail a few times.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float


class WebhookReceiver:
    def __init__(self, answer: Callable[[dict[str, str], bytes], int] | None = None) -> None:
        self._answer = answer or (lambda headers, body: 200)
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        status = self._answer(headers, body)
        with self._lock:
            self.received.append(Received(headers, body, status, time.time()))
        return web.Response(status=status, text="ok" if status < 300 else "no")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(self, predicate: Callable[[list[Received]], Any], timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()
            if predicate(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"the receiver did not get what was expected in {timeout} s: "
                             f"{[(r.headers.get('webhook-id'), r.body[:80], r.answered) for r in self.snapshot()]}")
