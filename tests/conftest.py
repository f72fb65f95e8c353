"""Suite-wide fixtures: real Redis, real onair node processes, CI rules.

With ``CI=true`` a skipped test is a failed test: a missing dependency must
never pass silently in CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.node import TEST_REDIS_PORT, NodeProcess, free_port, redis_db_url, redis_up

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true turns skips into failures): {report.longrepr}"


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return require_tool("ffmpeg")


@pytest.fixture(scope="session")
def ffprobe() -> str:
    return require_tool("ffprobe")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis database, flushed before and after the test."""
    if not redis_up():
        pytest.skip(f"no Redis answering on 127.0.0.1:{TEST_REDIS_PORT}")
    import redis

    url = redis_db_url(9)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator:
    """Start real ``onair serve`` processes; all are stopped at teardown."""
    started: list[NodeProcess] = []

    def start(**options: object) -> NodeProcess:
        data_dir = options.pop("data_dir", None) or tmp_path / f"node{len(started)}"
        node = NodeProcess(Path(str(data_dir)), **options)
        node.start()
        started.append(node)
        return node

    yield start
    for node in reversed(started):
        node.stop()


@pytest.fixture
def node(node_factory) -> NodeProcess:
    return node_factory()


__all__ = ["free_port", "require_tool", "IN_CI"]


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture
def chromium():
    """Debian's Chromium driven by Playwright (no browser download).

    Function-scoped on purpose: Playwright's sync API runs an event loop in this
    thread while it is started, which would break every asyncio test after it.
    """
    require_tool("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
async def browser():
    """The same Chromium through Playwright's async API, for async tests."""
    require_tool("chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
