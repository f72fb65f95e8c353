"""A node process a benchmark started: its ports, its JSON API as the admin, its health check; and the
ffmpeg publisher the RTMP benchmarks feed it with."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
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


def make_flv_source(path: Path, seconds: float) -> None:
    """An FLV file to publish with ``-c copy``: 720p30 H.264 at 3 Mb/s (2 s GOP) and 128 kb/s AAC."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3000k",
                    "-maxrate", "3000k", "-bufsize", "6000k", "-g", "60", "-keyint_min", "60",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv", str(path)], check=True)


def publish_flv(source: Path, url: str) -> subprocess.Popen[bytes]:
    """ffmpeg publishing ``source`` in real time (``-re``, ``-c copy``) to an RTMP URL."""
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(source),
                             "-c", "copy", "-f", "flv", url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def rtmp_tools_missing() -> bool:
    """Say on stderr which of ffmpeg and nginx is not installed; True if one is not."""
    missing = [tool for tool in ("ffmpeg", "nginx") if shutil.which(tool) is None]
    for tool in missing:
        print(f"{tool} is not installed (apt-get install ffmpeg nginx libnginx-mod-rtmp)", file=sys.stderr)
    return bool(missing)
