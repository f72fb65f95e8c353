"""The reference caching edge (``deploy/edge/nginx.conf``, Debian nginx) run by a test as its own process,
on a loopback port, with its placeholders filled in."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from tests.support.node import free_port

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "edge" / "nginx.conf"
_LOGGED = re.compile(r'"GET (/hls/\S+)" (\d{3}) \d+ cache=(\S+)')


def edge_config(prefix: Path, listen: str, origins: list[str]) -> str:
    """The shipped config for nginx run with ``-p prefix``: ``origins`` are the nodes' HOST:PORT."""
    servers = " ".join(f"server {origin} max_fails=1 fail_timeout=2s;" for origin in origins)
    return (CONFIG.read_text().replace("@PREFIX@", str(prefix)).replace("@LISTEN@", listen)
            .replace("@ORIGINS@", servers))


class Edge:
    """nginx with the repository's edge config in front of ``origin_ports`` (nodes on 127.0.0.1)."""

    def __init__(self, prefix: Path, *origin_ports: int) -> None:
        self.prefix = prefix
        self.port = free_port()
        prefix.mkdir(parents=True)
        config = edge_config(prefix, f"127.0.0.1:{self.port}", [f"127.0.0.1:{p}" for p in origin_ports])
        # the workers write the cache under this test's temp dir (0700, root's)
        (prefix / "nginx.conf").write_text("user root;\n" + config)
        self.proc = subprocess.Popen(["nginx", "-c", str(prefix / "nginx.conf"), "-p", str(prefix)],
                                     stdout=subprocess.DEVNULL, stderr=(prefix / "stderr.log").open("ab"))
        self._wait_listening()

    def _wait_listening(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.prefix / 'stderr.log').read_text()}"
                                   f"{self.error_log()}")
            try:
                urllib.request.urlopen(f"{self.base}/nginx-edge-probe", timeout=1)
            except urllib.error.HTTPError:
                return  # answered (the node's 404)
            except OSError:
                time.sleep(0.05)
                continue
            return
        raise RuntimeError(f"nginx did not listen on {self.port} in {timeout} s")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def served(self) -> Counter[tuple[str, str]]:
        """(path, cache status) of every /hls GET the edge answered, counted from its access log."""
        path = self.prefix / "access.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return Counter((m.group(1), m.group(3)) for m in _LOGGED.finditer(text))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
