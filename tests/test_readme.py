"""The README's first screen: exactly two commands, and the serve one really serves on the embedded defaults."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.node import free_port

ROOT = Path(__file__).resolve().parent.parent


def first_screen_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    first_screen = text.split("\n---\n", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", first_screen, re.S)]


def test_first_screen_has_a_serve_and_a_test_command():
    commands = first_screen_commands()
    assert len(commands) == 2, commands
    serve, test = commands
    assert serve.endswith("onair serve")
    assert test == "./scripts/test"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test" in ci


def test_onair_serve_runs_on_embedded_defaults(tmp_path: Path):
    """``onair serve`` with no options (ports moved by env vars so the test can run anywhere)."""
    onair = shutil.which("onair") or str(Path(sys.executable).parent / "onair")
    if not Path(onair).exists():
        pytest.skip("the onair console script is not installed")
    http, rtmp = free_port(), free_port()
    env = {**os.environ, "ONAIR_HTTP_PORT": str(http), "ONAIR_RTMP_PORT": str(rtmp), "ONAIR_HOST": "127.0.0.1"}
    env.pop("ONAIR_ADMIN_TOKEN", None)
    env.pop("ONAIR_REDIS_URL", None)
    proc = subprocess.Popen([onair, "serve"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=1) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "onair serve did not answer /healthz"
                time.sleep(0.2)
        # embedded defaults: state under ./data, an admin token generated once, no Redis
        token_file = tmp_path / "data" / "admin-token"
        assert token_file.exists() and (tmp_path / "data" / "onair.db").exists()
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode()
    token = token_file.read_text().strip()
    assert output.count(token) == 1, "the generated admin token is printed exactly once"


def test_docker_compose_file_is_accepted():
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed")
    # compose has no default admin token (tests/e2e/test_safe_defaults.py): one must be given
    env = {**os.environ, "ONAIR_ADMIN_TOKEN": "Zr8pQ2vX9mT4kW7bN1cJ5hF3sD6gL0yE"}
    out = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr.decode()
    assert b"redis" in out.stdout and b"ONAIR_REDIS_URL" in out.stdout
    # two nodes behind the caching edge, which runs the shipped config with both nodes as its upstream
    text = out.stdout.decode()
    services = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
                              capture_output=True, timeout=60, env=env, text=True).stdout.split()
    assert {"onair-a", "onair-b", "edge", "redis"} <= set(services), services
    for node in ("onair-a", "onair-b"):
        assert f"ONAIR_ADVERTISE_URL: http://{node}:8080" in text
    assert text.count("ONAIR_PUBLIC_URL: http://localhost:8080") == 2
    assert "deploy/edge/nginx.conf:/etc/onair-edge/nginx.conf:ro" in text
    assert "server onair-a:8080" in text and "server onair-b:8080" in text
