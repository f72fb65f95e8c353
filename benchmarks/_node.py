"""A node process a benchmark started: its ports, its JSON API as the admin, its health check."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from benchmarks._measure import free_port


def api_request(base: str, method: str, path: str, token: str, body: object = None) -> tuple[int, object]:
    """(status, JSON document or raw bytes) of one API call with ``Authorization: Bearer <token>``."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def wait_healthy(base: str, timeout: float = 30) -> None:
    """Until ``GET /healthz`` answers 200; ``RuntimeError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if api_request(base, "GET", "/healthz", "")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the node did not start")


class BenchNode:
    """``command(http_port, rtmp_port)`` started on two free ports; ready once it answers /healthz."""

    def __init__(self, command: Callable[[int, int], list[str]], log_path: Path, admin: str,
                 cwd: Path | None = None, start_timeout: float = 30) -> None:
        self.http_port, self.rtmp_port = free_port(), free_port()
        self.admin = admin
        self.proc = subprocess.Popen(command(self.http_port, self.rtmp_port), cwd=cwd, stdout=subprocess.DEVNULL,
                                     stderr=open(log_path, "wb"))
        wait_healthy(self.base, start_timeout)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def request(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        return api_request(self.base, method, path, self.admin, body)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
