"""A real nginx with the RTMP module as a destination (simulcast tests, benchmarks/simulcast.py).

The generated config listens on loopback only: an RTMP port whose application
``live`` writes HLS (``hls on``, 1 s fragments, every fragment kept), and,
with ``tls``, an RTMPS port: nginx's ``stream`` module terminating TLS with the
given certificate in front of the RTMP port, as hosted RTMPS ingests do.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.node import free_port

MODULES = Path("/usr/lib/nginx/modules")


def require_nginx_rtmp(tls: bool = False) -> str:
    """The nginx binary, or a skip (a failure with CI=true) naming the missing package."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (apt: nginx)")
    if not (MODULES / "ngx_rtmp_module.so").exists():
        pytest.skip("nginx's RTMP module is not installed (apt: libnginx-mod-rtmp)")
    if tls and not (MODULES / "ngx_stream_module.so").exists():
        pytest.skip("nginx's stream module is not installed (apt: libnginx-mod-stream)")
    return nginx


class NginxRtmp:
    def __init__(self, prefix: Path, *, tls: tuple[Path, Path] | None = None, rtmp_port: int = 0,
                 rtmps_port: int = 0) -> None:
        self.nginx = require_nginx_rtmp(tls is not None)
        self.prefix = prefix
        self.rtmp_port = rtmp_port or free_port()
        self.rtmps_port = (rtmps_port or free_port()) if tls else 0
        self.hls_dir = prefix / "hls"
        self.hls_dir.mkdir(parents=True, exist_ok=True)
        stream = ""
        if tls is not None:
            cert, key = tls
            stream = f"""
stream {{
  server {{
    listen 127.0.0.1:{self.rtmps_port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    proxy_pass 127.0.0.1:{self.rtmp_port};
  }}
}}"""
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers write HLS under the test's private dir
        config = f"""load_module {MODULES / 'ngx_rtmp_module.so'};
{'load_module ' + str(MODULES / 'ngx_stream_module.so') + ';' if tls else ''}
{user}daemon off;
master_process on;
worker_processes 1;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} info;
events {{ worker_connections 256; }}
rtmp {{
  server {{
    listen 127.0.0.1:{self.rtmp_port};
    chunk_size 4096;
    application live {{
      live on;
      record off;
      hls on;
      hls_path {self.hls_dir};
      hls_fragment 1s;
      hls_playlist_length 10m;
      hls_cleanup off;
    }}
  }}
}}{stream}
"""
        (prefix / "nginx.conf").write_text(config)
        self.proc: subprocess.Popen[bytes] | None = None

    def rtmp_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    def rtmps_url(self) -> str:
        return f"rtmps://127.0.0.1:{self.rtmps_port}/live"

    def start(self, timeout: float = 10) -> None:
        self.proc = subprocess.Popen([self.nginx, "-c", str(self.prefix / "nginx.conf"), "-p", str(self.prefix)],
                                     stdout=subprocess.DEVNULL, stderr=(self.prefix / "stderr.log").open("ab"))
        deadline = time.monotonic() + timeout
        ports = [p for p in (self.rtmp_port, self.rtmps_port) if p]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.prefix / 'stderr.log').read_text()}"
                                   f"{(self.prefix / 'error.log').read_text() if (self.prefix / 'error.log').exists() else ''}")
            if all(_listening(p) for p in ports):
                return
            time.sleep(0.05)
        raise RuntimeError("nginx did not listen in time")

    def kill(self) -> None:
        """``kill -9`` nginx, master and worker: the destination dies mid-stream."""
        if self.proc is None or self.proc.poll() is not None:
            return
        workers = _children(self.proc.pid)
        self.proc.kill()
        self.proc.wait()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # fast shutdown: fragments are closed when their publisher leaves
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def playlist(self, stream: str) -> Path:
        return self.hls_dir / f"{stream}.m3u8"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def ended_copy(playlist: Path) -> Path:
    """A copy of nginx's live playlist with #EXT-X-ENDLIST (nginx-rtmp writes none), so ffprobe reads it
    whole, as a replay."""
    copy = playlist.with_name(playlist.stem + "-ended.m3u8")
    copy.write_text(playlist.read_text().rstrip("\n") + "\n#EXT-X-ENDLIST\n")
    return copy
