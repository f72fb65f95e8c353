"""Run a real ``onair serve`` process for end-to-end tests and talk to its API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ADMIN_TOKEN = "admin_test_token_0123456789"


#: The Redis server the tests use: ``ONAIR_TEST_REDIS_PORT`` (default 6379) on 127.0.0.1. Each test module
#: takes its own database number of it; a second checkout testing at the same time points at its own server.
TEST_REDIS_PORT = int(os.environ.get("ONAIR_TEST_REDIS_PORT", "6379"))


def redis_db_url(db: int) -> str:
    """The URL of database ``db`` on the tests' Redis server."""
    return f"redis://127.0.0.1:{TEST_REDIS_PORT}/{db}"


def redis_up(port: int = TEST_REDIS_PORT, host: str = "127.0.0.1") -> bool:
    """True if a Redis server answers PING on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NodeProcess:
    def __init__(self, data_dir: Path, *, log_path: Path | None = None, command: list[str] | None = None,
                 cwd: Path | None = None, env: dict[str, str] | None = None, **options: object) -> None:
        self.data_dir = data_dir
        #: how to run ``onair`` (default: this interpreter, ``-m broadcaster.cli``, from the checkout)
        self.command = command or [sys.executable, "-m", "broadcaster.cli"]
        self.cwd = cwd or Path(__file__).resolve().parents[2]
        self.env = env if env is not None else dict(os.environ)
        self.http_port = int(options.pop("http_port", 0) or free_port())
        self.rtmp_port = int(options.pop("rtmp_port", 0) or free_port())
        self.options = {"reconnect_grace": 5, "ladder": "source,240p", "segment_target": 1, **options}
        self.proc: subprocess.Popen[bytes] | None = None
        #: by default inside the data dir (which the test then creates); elsewhere, the node creates it
        self.log_path = log_path or data_dir / "node.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}"

    def rtmp_url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        args = [*self.command, "serve", "--host", "127.0.0.1",
                "--http-port", str(self.http_port), "--rtmp-port", str(self.rtmp_port),
                "--data-dir", str(self.data_dir), "--admin-token", ADMIN_TOKEN]
        for name, value in self.options.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            for v in values:
                args += ["--" + name.replace("_", "-"), str(v)]
        env = {**self.env, "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"onair exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"onair did not answer /healthz in 30 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self, orphan_timeout: float = 15) -> None:
        """``kill -9`` the node (a crash: nothing is flushed or ended).  Its transcode workers, left
        without a parent, see their stdin close and exit; any still running after
        ``orphan_timeout`` seconds are killed too, so a test leaves no process behind."""
        assert self.proc is not None and self.proc.poll() is None, "the node is not running"
        workers = _descendants(self.proc.pid)
        self.proc.kill()
        self.proc.wait()
        deadline = time.monotonic() + orphan_timeout
        while workers and time.monotonic() < deadline:
            workers = [w for w in workers if _same_process(*w)]
            time.sleep(0.1)
        for pid, started in workers:
            if _same_process(pid, started):
                os.kill(pid, signal.SIGKILL)

    # --- HTTP -------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, token: str | None = ADMIN_TOKEN,
                headers: dict[str, str] | None = None, raw: bytes | None = None,
                timeout: float = 10) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if data is not None and raw is None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                payload = resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            payload, status, ctype = err.read(), err.code, err.headers.get("Content-Type", "")
        if "json" in ctype and payload:
            return status, json.loads(payload)
        return status, payload

    def create_broadcast(self, title: str = "test", visibility: str = "public") -> dict[str, Any]:
        status, doc = self.request("POST", "/api/broadcasts", {"title": title, "visibility": visibility})
        assert status == 201, doc
        return doc

    def broadcast(self, broadcast_id: str) -> dict[str, Any]:
        status, doc = self.request("GET", f"/api/broadcasts/{broadcast_id}")
        assert status == 200, doc
        return doc

    def wait_status(self, broadcast_id: str, wanted: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        doc: dict[str, Any] = {}
        while time.monotonic() < deadline:
            doc = self.broadcast(broadcast_id)
            if doc["status"] == wanted:
                return doc
            time.sleep(0.1)
        raise AssertionError(f"broadcast {broadcast_id} is {doc.get('status')}, not {wanted}, after {timeout} s")

    def wait_media(self, broadcast_id: str, timeout: float = 20, audio: bool = False) -> dict[str, Any]:
        """Wait until the live broadcast has received video (codec known), and with ``audio`` audio too
        (the first audio unit may come after the first video one)."""
        deadline = time.monotonic() + timeout
        doc: dict[str, Any] = {}
        while time.monotonic() < deadline:
            doc = self.broadcast(broadcast_id)
            live = doc.get("live") or {}
            if live.get("video_codec") and (not audio or live.get("audio_codec")):
                return doc
            time.sleep(0.1)
        raise AssertionError(f"broadcast {broadcast_id} received no video in {timeout} s: {doc}")

    def metrics(self) -> str:
        status, body = self.request("GET", "/metrics", token=None)
        assert status == 200
        return body.decode() if isinstance(body, bytes) else str(body)


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _same_process(pid: int, started: str | None) -> bool:
    state = _start_time(pid)
    return state is not None and state == started


def _descendants(pid: int) -> list[tuple[int, str | None]]:
    """Every process below ``pid`` (Linux /proc), with its start time (so a reused pid is left alone)."""
    found: list[tuple[int, str | None]] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as fh:
                    children = [int(c) for c in fh.read().split()]
            except OSError:
                continue
            for child in children:
                found.append((child, _start_time(child)))
                pending.append(child)
    return found
