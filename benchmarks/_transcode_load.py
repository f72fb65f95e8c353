"""Transcoding load for benchmarks: N broadcasts on an onair node, each published at 1080p30 over RTMP.

The source is made once by the ffmpeg CLI (``benchmarks.transcode.make_source``:
testsrc2 1080p30 H.264 ~6 Mbps, keyframe every 2 s, + AAC) and each publisher
is ``ffmpeg -re -stream_loop -1 -c copy``: real-time pace, the publishers
themselves cost next to nothing, and they run until stopped.  The node
transcodes each with its configured ladder (the default one unless the node
was started with ``--ladder``) in its worker processes.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.transcode import make_source

__all__ = ["TranscodeLoad", "make_source"]


class TranscodeLoad:
    def __init__(self, http_port: int, rtmp_port: int, admin_token: str, source: Path, count: int) -> None:
        self.base = f"http://127.0.0.1:{http_port}"
        self.rtmp_port = rtmp_port
        self.token = admin_token
        self.source = source
        self.count = count
        self.ids: list[str] = []
        self.publishers: list[subprocess.Popen[bytes]] = []

    def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=5).read())

    def start(self, timeout: float = 30.0) -> None:
        """Create the broadcasts, start publishing, return once every one is live with a worker."""
        for i in range(self.count):
            doc = self._api("POST", "/api/broadcasts", {"title": f"transcode load {i}"})
            self.ids.append(doc["id"])
            url = f"rtmp://127.0.0.1:{self.rtmp_port}/live/{doc['stream_key']}"
            self.publishers.append(subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
                 "-i", str(self.source), "-c", "copy", "-f", "flv", url],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.worker_pid(bid) is not None for bid in self.ids):
                return
            for proc in self.publishers:
                if proc.poll() is not None:
                    raise RuntimeError(f"a publisher exited: {proc.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
            time.sleep(0.25)
        raise RuntimeError("the broadcasts did not go live with a transcode worker in time")

    def live(self, broadcast_id: str) -> dict[str, Any] | None:
        doc = self._api("GET", f"/api/broadcasts/{broadcast_id}")
        return doc.get("live") if doc.get("status") == "live" else None

    def worker_pid(self, broadcast_id: str) -> int | None:
        live = self.live(broadcast_id)
        return None if live is None else live.get("transcoder", {}).get("worker_pid")

    def realtime_factors(self) -> list[float | None]:
        """Each broadcast's transcoder realtime factor as the node reports it (None: not reported)."""
        out = []
        for bid in self.ids:
            live = self.live(bid)
            out.append(None if live is None else live.get("transcoder", {}).get("realtime_factor"))
        return out

    def stop(self) -> None:
        for proc in self.publishers:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.publishers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
