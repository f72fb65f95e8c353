"""Publish-to-playlist delay of every segment and part, and hls.js's live latency: onair vs nginx-rtmp.

Issue 6.  Three servers, side by side in one run, rounds alternating
(A B C A B C ...):

* ``onair-ll``  -- ``onair serve --hls-variant lowlatency --part-target 0.5`` (LL-HLS, fMP4 parts);
* ``onair-ts``  -- ``onair serve --hls-variant mpegts`` (standard HLS, MPEG-TS segments);
* ``nginx-rtmp`` -- Debian's nginx + libnginx-mod-rtmp, ``hls_fragment 2s; hls_playlist_length 6s``,
  its HLS directory (and a tiny hls.js page) served by an ``http`` block of the same nginx.

All get 2 s segments; onair runs ``--ladder source`` unless ``--ladder`` says otherwise.

Method
------
*Source.*  One H.264/AAC FLV file is made first (lavfi testsrc2 1280x720 30 fps, libx264 ``veryfast
-tune zerolatency`` (no B-frames) ~2.5 Mbps, a keyframe every ``--keyint`` s with ``-g``/``-keyint_min``
and ``-sc_threshold 0``; sine 440 Hz AAC 128 kb/s).  Each run publishes it with ``ffmpeg -re -c copy
-flush_packets 1 -f flv rtmp://127.0.0.1:...``: the ffmpeg CLI at real-time pace.  Pre-encoding instead
of encoding live keeps an x264 encoder off the two shared cores while the servers are timed, and makes
the publisher's clock exact: with ``-c copy`` a packet leaves as soon as ``-re`` releases it.
``--live-encode`` encodes live instead (testsrc2 + sine -> libx264 zerolatency).

*Anchor t0* (the wall time at which media time 0 leaves the publisher).  ffmpeg runs with
``-progress pipe:1 -stats_period 0.1``; every report carries ``out_time_us``, the end of the media
muxed so far, read here at wall time ``w``.  ``-re`` never releases media early, so ``w - out_time``
is never below t0 (minus one frame) and exceeds it only by the report's lateness: t0 = the minimum of
``w - out_time`` over the run.  Precision: about one frame (33 ms).  Spawn time + a start-up guess
would carry ffmpeg's variable start-up (RTMP connect, probing) into every figure; drawtext + OCR would
be precise but heavy.  The same anchor is used for all three servers, so the comparison is fair.

*Delay.*  Each server's first video media playlist (``--all-renditions``: every media playlist,
audio included) is polled over HTTP from this process every ``--poll-ms`` (20) ms, from before the
publisher starts.  The wall time each segment (by media sequence number) and each ``#EXT-X-PART`` (by
segment number and index) first appears is recorded.  Media end of a segment = cumulative EXTINF from
the first segment; of a part = its segment's start + cumulative part durations.
``delay = first seen - (t0 + media end)``.  The first segment (and its parts) carries start-up
(onair: the transcode worker's start) and is reported apart; p50/p90/max are over the rest, pooled
over rounds.  The poll interval adds ~half of it (10 ms) on average to every figure.

*Blocking reload* (onair-ll only).  Concurrently with the poller, a loop asks
``index.m3u8?_HLS_msn=M&_HLS_part=P`` for the next part (the part after the last one listed, in the
in-progress segment, as ``PRELOAD-HINT`` names it) and, when the answer arrives, ``os.stat``s that
part's file in the node's data directory (same machine, same clock): answer delay = answer time -
part file mtime (the part's completion).  Also printed: answer time - first seen by the 20 ms poller
(negative: blocking beat polling).  Target: within 100 ms of the part's completion.

*Player* (``--player``, on by default).  After the polling phase, with the publisher still going, a
headless Chromium (Debian's, through Playwright) opens the stream with hls.js: onair's watch page
``/watch/<id>`` (``window.onairPlayer.hls``), for nginx-rtmp a page with the same hls.js build and the
same ``Hls`` config, copied at run time from ``player-demo/watch.js``.  From ``--player-settle`` (1) s
after playback starts it samples every 0.5 s for ``--player-seconds`` (12): ``hls.latency`` (the
player's distance from the live edge of the playlist it has), ``hls.targetLatency``,
``hls.lowLatencyMode``, whether the level details have parts, and the playhead's source media time (the
playlist's first fragment, by sequence number, has its media start in the poller's timeline and its
start on the player's timeline), which gives *publish-to-playhead* = now - (t0 + media time at the
playhead): what a viewer sees behind the publisher, less decode and display.  Seconds in which the
playhead stood still are counted as stalls.  Acceptance (on the p50): hls.latency <= 2.0 s for LL-HLS
with a 0.5 s part target, and <= 1.5 x segment duration + the player's hold-back (its targetLatency)
without LL-HLS.

onair's ``GET /api/broadcasts/{id}`` is read before each onair run ends; its own delay figure (a key of its
live stats containing ``latency`` or ``publish_to_playlist``) is printed beside the external one.

    python benchmarks/latency.py --rounds 2 --seconds 20
    python benchmarks/latency.py --servers onair-ts,nginx-rtmp --no-player --verbose

Servers run in their own process groups and are killed with them on exit; temporary directories are
removed; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._measure import free_port, machine  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
CHROMIUM = "/usr/bin/chromium"
# Playwright adds --headless and a fresh --user-data-dir itself
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
ADMIN_TOKEN = "bench-latency-admin-0123456789"
SEGMENT_TARGET = 2.0
FPS = 30
SERVERS = ("onair-ll", "onair-ts", "nginx-rtmp")
#: keys of onair's live stats (GET /api/broadcasts/{id}) that carry its own delay figure
LATENCY_KEYS = ("latency", "publish_to_playlist")


# --- media playlists (pure) ----------------------------------------------------

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def attributes(line: str) -> dict[str, str]:
    """``#TAG:A=1,B="x,y"`` -> {"A": "1", "B": "x,y"}."""
    return {k: v.strip('"') for k, v in _ATTR.findall(line.split(":", 1)[1] if ":" in line else "")}


@dataclass(frozen=True)
class PartView:
    msn: int
    index: int
    duration: float
    uri: str


@dataclass(frozen=True)
class SegmentView:
    msn: int
    duration: float
    uri: str
    parts: tuple[PartView, ...]


@dataclass(frozen=True)
class MediaView:
    """What one fetch of a media playlist lists."""

    segments: tuple[SegmentView, ...]
    #: parts after the last complete segment: the segment being built (msn = next_msn)
    trailing: tuple[PartView, ...]
    next_msn: int
    part_target: float | None
    ended: bool

    def next_part(self) -> tuple[int, int]:
        """(msn, part) of the part after the last one listed: what a blocking reload asks for."""
        if self.trailing:
            return self.next_msn, self.trailing[-1].index + 1
        return self.next_msn, 0

    def find_part(self, msn: int, index: int) -> PartView | None:
        for part in self.trailing:
            if part.msn == msn and part.index == index:
                return part
        for segment in self.segments:
            if segment.msn == msn:
                return segment.parts[index] if index < len(segment.parts) else None
        return None


def parse_media(text: str) -> MediaView:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not an HLS playlist: missing #EXTM3U")
    msn = 0
    segments: list[SegmentView] = []
    parts: list[tuple[float, str]] = []
    duration: float | None = None
    part_target: float | None = None
    ended = False
    for line in lines[1:]:
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PART-INF:"):
            part_target = float(attributes(line).get("PART-TARGET", "nan"))
        elif line.startswith("#EXT-X-PART:"):
            attrs = attributes(line)
            parts.append((float(attrs["DURATION"]), attrs["URI"]))
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif not line.startswith("#"):
            if duration is None:
                raise ValueError(f"URI without #EXTINF: {line}")
            seq = msn + len(segments)
            # A server drops the parts of older segments from the front: a segment whose listed parts
            # do not add up to it lists a tail whose indices are unknown; they were seen when new.
            whole = abs(sum(d for d, _ in parts) - duration) <= 0.005 * max(1, len(parts))
            views = tuple(PartView(seq, i, d, u) for i, (d, u) in enumerate(parts)) if whole else ()
            segments.append(SegmentView(seq, duration, line, views))
            parts, duration = [], None
    next_msn = msn + len(segments)
    trailing = tuple(PartView(next_msn, i, d, u) for i, (d, u) in enumerate(parts))
    return MediaView(tuple(segments), trailing, next_msn, part_target, ended)


def first_variant(master: str) -> str | None:
    """URI of the first ``#EXT-X-STREAM-INF`` (the first video rendition)."""
    lines = [line.strip() for line in master.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF") and i + 1 < len(lines):
            return lines[i + 1]
    return None


def all_media_uris(master: str) -> list[str]:
    """Every media playlist a master playlist names: variants, then ``#EXT-X-MEDIA`` renditions."""
    lines = [line.strip() for line in master.splitlines()]
    variants = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line.startswith("#EXT-X-STREAM-INF")]
    media = [attributes(line)["URI"] for line in lines
             if line.startswith("#EXT-X-MEDIA:") and "URI" in attributes(line)]
    return list(dict.fromkeys(variants + media))


@dataclass(frozen=True)
class Sighting:
    msn: int
    part: int | None  # None: the whole segment
    media_end: float  # seconds from the start of the first segment
    seen: float  # wall time (time.time()) of the first fetch that listed it


class Timeline:
    """Feeds of one media playlist -> when each segment and part was first listed, and its media end."""

    def __init__(self) -> None:
        self.sightings: dict[tuple[int, int | None], Sighting] = {}
        self._durations: dict[int, float] = {}
        self.first_msn: int | None = None
        self.parts_seen = False

    def start_of(self, msn: int) -> float | None:
        """Media start of segment ``msn``, once every segment before it is known."""
        if self.first_msn is None or msn < self.first_msn:
            return None
        total = 0.0
        for seq in range(self.first_msn, msn):
            if seq not in self._durations:
                return None
            total += self._durations[seq]
        return total

    def feed(self, view: MediaView, seen: float) -> None:
        if self.first_msn is None:
            if not view.segments and not view.trailing:
                return
            self.first_msn = view.segments[0].msn if view.segments else view.next_msn
        for segment in view.segments:
            self._durations.setdefault(segment.msn, segment.duration)
            self._note_parts(segment.msn, segment.parts, seen)
            start = self.start_of(segment.msn)
            if (segment.msn, None) not in self.sightings and start is not None:
                self.sightings[(segment.msn, None)] = Sighting(segment.msn, None, start + segment.duration, seen)
        self._note_parts(view.next_msn, view.trailing, seen)

    def _note_parts(self, msn: int, parts: tuple[PartView, ...], seen: float) -> None:
        start = self.start_of(msn)
        if start is None:
            return
        end = start
        for part in parts:
            self.parts_seen = True
            end += part.duration
            self.sightings.setdefault((msn, part.index), Sighting(msn, part.index, end, seen))


# --- statistics -------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: list[float], upper: float = 0.90) -> str:
    if not values:
        return f"{'-':>6} {'-':>6} {'-':>6}"
    return f"{percentile(values, 0.5):6.3f} {percentile(values, upper):6.3f} {max(values):6.3f}"


# --- the publisher ---------------------------------------------------------------

def make_source(path: Path, seconds: float, keyint: float) -> None:
    gop = str(round(keyint * FPS))
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={FPS}",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", f"{seconds:.0f}", *_x264(gop), "-c:a", "aac", "-b:a", "128k", "-f", "flv", str(path)],
                   check=True)


def _x264(gop: str) -> list[str]:
    return ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-b:v", "2500k",
            "-maxrate", "2500k", "-bufsize", "5000k", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
            "-pix_fmt", "yuv420p"]


class Publisher:
    """``ffmpeg -re ... -f flv rtmp://...`` and the anchor t0 read from its ``-progress`` reports."""

    def __init__(self, url: str, seconds: float, source: Path | None, keyint: float, log: Path) -> None:
        if source is not None:
            inputs = ["-re", "-i", str(source), "-t", f"{seconds:.1f}", "-c", "copy"]
        else:
            inputs = ["-re", "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={FPS}",
                      "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", f"{seconds:.1f}",
                      *_x264(str(round(keyint * FPS))), "-c:a", "aac", "-b:a", "128k"]
        self.argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-nostats",
                     "-progress", "pipe:1", "-stats_period", "0.1", *inputs,
                     "-flush_packets", "1", "-f", "flv", url]
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.t0 = math.inf
        self.reports = 0
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with self.log.open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(*self.argv, stdout=asyncio.subprocess.PIPE,
                                                             stderr=err, stdin=asyncio.subprocess.DEVNULL)
        self._reader = asyncio.create_task(self._read_progress(), name="publisher-progress")

    async def _read_progress(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            seen = time.time()
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            if key == "out_time_us" and value.lstrip("-").isdigit() and int(value) > 0:
                self.reports += 1
                self.t0 = min(self.t0, seen - int(value) / 1e6)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


# --- the servers -------------------------------------------------------------------

PLAYER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>nginx-rtmp hls.js</title></head>
<body><video id="video" muted playsinline controls></video>
<script src="/vendor/hls.min.js"></script>
<script>
const video = document.getElementById("video");
const hls = new Hls(HLS_CONFIG);
window.onairPlayer = { hls };
hls.on(Hls.Events.MANIFEST_PARSED, () => { video.play().catch(() => {}); });
hls.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal && data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError(); });
hls.loadSource("/hls/stream/index.m3u8");
hls.attachMedia(video);
</script></body></html>
"""


def watch_page_hls_config() -> str:
    """The ``Hls`` config object literal of player-demo/watch.js, so the nginx page plays exactly like it."""
    found = re.search(r"new Hls\((\{[^}]*\})\)", (REPO / "player-demo" / "watch.js").read_text())
    if found is None:
        raise RuntimeError("player-demo/watch.js: no `new Hls({...})` to copy the player config from")
    return found.group(1)


@dataclass
class Stream:
    rtmp_url: str
    #: master playlist URL (None: ``media_url`` is the only playlist)
    master_url: str | None
    media_url: str | None
    page_url: str
    #: where the server writes the HLS files this URL prefix names (for part mtimes)
    hls_url_prefix: str
    hls_dir: Path
    broadcast_id: str | None = None


class Server:
    name = ""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    async def open_stream(self, session: aiohttp.ClientSession) -> Stream:
        raise NotImplementedError

    async def live_latency(self, session: aiohttp.ClientSession, stream: Stream) -> Any:
        return None

    def stop(self) -> None:
        """Kill the server's whole process group (its workers included)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        # stragglers in the group (a worker that outlived its parent)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _find_key(doc: Any, wanted: tuple[str, ...]) -> dict[str, Any]:
    """Every value under a key containing one of ``wanted``, with its path."""
    found: dict[str, Any] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                where = f"{path}.{key}" if path else key
                if any(w in key.lower() for w in wanted):
                    found[where] = value
                else:
                    walk(value, where)
    walk(doc, "")
    return found


class OnairServer(Server):
    def __init__(self, work: Path, variant: str, ladder: str, part_target: float, extra: list[str]) -> None:
        super().__init__(work)
        self.name = "onair-ll" if variant == "lowlatency" else "onair-ts"
        self.variant, self.ladder, self.part_target, self.extra = variant, ladder, part_target, extra
        self.http, self.rtmp = free_port(), free_port()
        self.data = work / f"{self.name}-data"
        self.log = work / f"{self.name}.log"

    def start(self) -> None:
        shutil.rmtree(self.data, ignore_errors=True)
        argv = [sys.executable, "-m", "broadcaster.cli", "serve", "--host", "127.0.0.1",
                "--http-port", str(self.http), "--rtmp-port", str(self.rtmp), "--data-dir", str(self.data),
                "--admin-token", ADMIN_TOKEN, "--ladder", self.ladder, "--segment-target", str(SEGMENT_TARGET),
                "--hls-variant", self.variant, "--part-target", str(self.part_target),
                "--reconnect-grace", "1", "--log-level", "warning", *self.extra]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)

    async def open_stream(self, session: aiohttp.ClientSession) -> Stream:
        base = f"http://127.0.0.1:{self.http}"
        await _wait_http(session, base + "/healthz", self)
        async with session.post(base + "/api/broadcasts", json={"title": "latency bench"},
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
            if resp.status != 201:
                raise RuntimeError(f"{self.name}: creating a broadcast answered {resp.status}: {await resp.text()}")
            doc = await resp.json()
        return Stream(rtmp_url=f"rtmp://127.0.0.1:{self.rtmp}/live/{doc['stream_key']}",
                      master_url=f"{base}/hls/{doc['id']}/master.m3u8", media_url=None,
                      page_url=f"{base}/watch/{doc['id']}", hls_url_prefix=f"{base}/hls/",
                      hls_dir=self.data / "hls", broadcast_id=doc["id"])

    async def live_latency(self, session: aiohttp.ClientSession, stream: Stream) -> Any:
        async with session.get(f"http://127.0.0.1:{self.http}/api/broadcasts/{stream.broadcast_id}",
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
            doc = await resp.json()
        return _find_key(doc.get("live") or {}, LATENCY_KEYS) or None


class NginxServer(Server):
    name = "nginx-rtmp"

    def __init__(self, work: Path) -> None:
        super().__init__(work)
        self.rtmp, self.http = free_port(), free_port()
        self.prefix = work / "nginx"

    def start(self) -> None:
        shutil.rmtree(self.prefix, ignore_errors=True)
        (self.prefix / "logs").mkdir(parents=True)
        (self.prefix / "hls").mkdir()
        (self.prefix / "www").mkdir()
        (self.prefix / "www" / "player.html").write_text(PLAYER_PAGE.replace("HLS_CONFIG", watch_page_hls_config()))
        conf = self.prefix / "nginx.conf"
        # user root: the workers write hls_path and read the page under this process's temp dir (0700)
        conf.write_text(f"""
load_module {NGINX_MODULE};
user root;
daemon off;
master_process on;
worker_processes 1;
error_log {self.prefix}/logs/error.log warn;
pid {self.prefix}/nginx.pid;
events {{ worker_connections 256; }}
rtmp {{
  server {{
    listen 127.0.0.1:{self.rtmp};
    application live {{
      live on;
      hls on;
      hls_path {self.prefix}/hls;
      hls_nested on;
      hls_fragment 2s;
      hls_playlist_length 6s;
    }}
  }}
}}
http {{
  access_log off;
  client_body_temp_path {self.prefix}/body;
  proxy_temp_path {self.prefix}/proxy;
  fastcgi_temp_path {self.prefix}/fastcgi;
  uwsgi_temp_path {self.prefix}/uwsgi;
  scgi_temp_path {self.prefix}/scgi;
  types {{ text/html html; application/javascript js; application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
  server {{
    listen 127.0.0.1:{self.http};
    location /hls/ {{
      alias {self.prefix}/hls/;
      add_header Cache-Control no-cache;
      add_header Access-Control-Allow-Origin *;
    }}
    location /vendor/ {{ alias {REPO}/player-demo/vendor/; }}
    location / {{ root {self.prefix}/www; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(self.prefix)], stdout=subprocess.DEVNULL,
                                     stderr=(self.prefix / "logs" / "stderr.log").open("ab"), start_new_session=True)

    async def open_stream(self, session: aiohttp.ClientSession) -> Stream:
        base = f"http://127.0.0.1:{self.http}"
        await _wait_http(session, base + "/player.html", self)
        return Stream(rtmp_url=f"rtmp://127.0.0.1:{self.rtmp}/live/stream", master_url=None,
                      media_url=f"{base}/hls/stream/index.m3u8", page_url=f"{base}/player.html",
                      hls_url_prefix=f"{base}/hls/", hls_dir=self.prefix / "hls")


async def _wait_http(session: aiohttp.ClientSession, url: str, server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}")
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.name}: {url} did not answer in {timeout:.0f} s")


# --- measuring ----------------------------------------------------------------------

@dataclass
class Poller:
    """Polls one media playlist on a fixed schedule and feeds its Timeline."""

    url: str
    interval: float
    timeline: Timeline = field(default_factory=Timeline)
    latest: MediaView | None = None

    async def run(self, session: aiohttp.ClientSession) -> None:
        due = time.monotonic()
        while True:
            try:
                async with session.get(self.url) as resp:
                    text = await resp.text() if resp.status == 200 else None
                seen = time.time()
                if text:
                    self.latest = parse_media(text)
                    self.timeline.feed(self.latest, seen)
            except (aiohttp.ClientError, ValueError):
                pass
            due += self.interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due, time.monotonic() - self.interval)  # never burst to catch up


@dataclass
class BlockingAnswer:
    msn: int
    part: int
    answered: float
    mtime: float | None  # the part file's mtime (None: no file found)


async def blocking_reload(session: aiohttp.ClientSession, stream: Stream, url: str, poller: Poller,
                          answers: list[BlockingAnswer]) -> None:
    """Ask for the next part with ``_HLS_msn``/``_HLS_part`` in a loop; time each answer against the part file."""
    while poller.latest is None or not poller.timeline.parts_seen:
        await asyncio.sleep(0.05)
    view = poller.latest
    rendition_dir = _local_dir(stream, url)
    while True:
        msn, part = view.next_part()
        try:
            async with session.get(url, params={"_HLS_msn": str(msn), "_HLS_part": str(part)},
                                   timeout=aiohttp.ClientTimeout(total=15)) as resp:
                text = await resp.text()
                answered = time.time()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            status = 0
        if status != 200:
            await asyncio.sleep(0.1)
            view = poller.latest or view
            continue
        try:
            answer = parse_media(text)
        except ValueError:
            continue
        found = answer.find_part(msn, part)
        mtime = None
        if found is not None and rendition_dir is not None:
            path = rendition_dir / urllib.parse.urlsplit(found.uri).path
            try:
                mtime = path.stat().st_mtime_ns / 1e9
            except OSError:
                pass
        if found is not None:
            answers.append(BlockingAnswer(msn, part, answered, mtime))
        view = answer
        if answer.ended:
            return


def _local_dir(stream: Stream, url: str) -> Path | None:
    """The directory of the files a playlist URL's relative URIs name, on this machine."""
    if not url.startswith(stream.hls_url_prefix):
        return None
    rel = urllib.parse.urlsplit(url[len(stream.hls_url_prefix):]).path
    return stream.hls_dir / Path(rel).parent


async def discover_playlists(session: aiohttp.ClientSession, stream: Stream, every: bool, timeout: float) -> list[str]:
    """The media playlist URLs to poll (waits for the master playlist; polled fast so nothing is missed)."""
    if stream.master_url is None:
        assert stream.media_url is not None
        return [stream.media_url]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with session.get(stream.master_url) as resp:
                if resp.status == 200:
                    master = await resp.text()
                    uris = all_media_uris(master) if every else [first_variant(master)]
                    if uris and uris[0]:
                        return [urllib.parse.urljoin(stream.master_url, u) for u in uris if u]
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.02)
    raise RuntimeError(f"no master playlist at {stream.master_url} after {timeout:.0f} s")


PLAYER_SAMPLE = """() => {
  const player = window.onairPlayer, video = document.getElementById("video");
  const hls = player && player.hls;
  if (!hls || !video) return null;
  const level = hls.levels && hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : 0];
  const details = level && level.details;
  const t = video.currentTime;
  // A reference fragment (its sequence number and start on the player's timeline) maps the playhead
  // to source media time; the playlist's first one works even when the playhead is behind the window.
  const first = details && details.fragments.length ? details.fragments[0] : null;
  const sn = first ? first.sn : null, fragStart = first ? first.start : null;
  return { now: Date.now() / 1000, latency: hls.latency, target: hls.targetLatency,
           lowLatencyMode: hls.lowLatencyMode, parts: !!(details && details.partList && details.partList.length),
           currentTime: t, paused: video.paused, rate: video.playbackRate, sn, fragStart,
           ahead: video.buffered.length ? video.buffered.end(video.buffered.length - 1) - t : 0 };
}"""

PLAYING = """() => { const v = document.getElementById("video");
  return !!(window.onairPlayer && window.onairPlayer.hls && v && v.currentTime > 0 && !v.paused); }"""


@dataclass
class PlayerResult:
    samples: list[dict[str, Any]]
    errors: list[str]
    startup: float | None  # page open -> playing, seconds

    def stalled_seconds(self) -> float:
        """Wall time between samples in which the playhead moved less than a fifth of it (a stall)."""
        total = 0.0
        for before, after in zip(self.samples, self.samples[1:]):
            wall = after["now"] - before["now"]
            if after["currentTime"] - before["currentTime"] < 0.2 * wall:
                total += wall
        return total


async def player_phase(browser: Any, page_url: str, seconds: float, settle: float) -> PlayerResult:
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    http_errors: dict[str, int] = {}

    def on_response(response: Any) -> None:
        if response.status >= 400:
            key = f"HTTP {response.status} {urllib.parse.urlsplit(response.url).path.rsplit('/', 1)[-1]}"
            http_errors[key] = http_errors.get(key, 0) + 1

    page.on("response", on_response)
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url} {request.failure}"))
    samples: list[dict[str, Any]] = []
    opened = time.monotonic()
    startup = None
    try:
        await page.goto(page_url)
        await page.wait_for_function(PLAYING, timeout=30_000, polling=100)
        startup = time.monotonic() - opened
        # hls.latency is computed from a playlist age that is not meaningful for the first moments
        await asyncio.sleep(settle)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sample = await page.evaluate(PLAYER_SAMPLE)
            if sample is not None:
                samples.append(sample)
            await asyncio.sleep(0.5)
    except Exception as exc:  # a player that never starts is a figure too, not a crash of the benchmark
        errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    finally:
        await context.close()
    errors += [f"{key} x{count}" for key, count in http_errors.items()]
    return PlayerResult(samples, errors, startup)


# --- one run --------------------------------------------------------------------------

@dataclass
class RunResult:
    server: str
    round_no: int
    t0: float
    phase_end: float
    timelines: dict[str, Timeline]
    primary: str
    blocking: list[BlockingAnswer]
    player: PlayerResult | None
    api_latency: Any
    notes: list[str]

    def delays(self, rendition: str | None = None) -> tuple[list[Sighting], list[float], list[float], list[float]]:
        """(sightings in the phase, first-segment delays, steady segment delays, steady part delays)."""
        timeline = self.timelines[rendition or self.primary]
        inside = sorted((s for s in timeline.sightings.values() if s.seen <= self.phase_end),
                        key=lambda s: (s.msn, -1 if s.part is None else s.part))
        first = [s.seen - (self.t0 + s.media_end) for s in inside if s.msn == timeline.first_msn and s.part is None]
        segs = [s.seen - (self.t0 + s.media_end) for s in inside if s.msn != timeline.first_msn and s.part is None]
        parts = [s.seen - (self.t0 + s.media_end) for s in inside if s.msn != timeline.first_msn and s.part is not None]
        return inside, first, segs, parts

    def publish_to_playhead(self) -> list[float]:
        return [value for _, value in self.publish_to_playhead_by_time()]

    def publish_to_playhead_by_time(self) -> list[tuple[float, float]]:
        """(sample time, wall time - (t0 + source media time at the playhead)) for each player sample."""
        if self.player is None:
            return []
        timeline = self.timelines[self.primary]
        values = []
        for sample in self.player.samples:
            if sample.get("sn") is None or sample.get("fragStart") is None:
                continue
            start = timeline.start_of(int(sample["sn"]))
            if start is None:
                continue
            media = start + sample["currentTime"] - sample["fragStart"]
            values.append((sample["now"], sample["now"] - (self.t0 + media)))
        return values


async def run_once(server: Server, round_no: int, args: argparse.Namespace, source: Path | None,
                   browser: Any) -> RunResult:
    notes: list[str] = []
    publish_seconds = args.seconds + (args.player_seconds + 20 if browser is not None else 0) + 3
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=16, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        server.start()
        try:
            stream = await server.open_stream(session)
            publisher = Publisher(stream.rtmp_url, publish_seconds, source, args.keyint,
                                  server.work / f"publisher-{server.name}.log")
            tasks: list[asyncio.Task[Any]] = []
            try:
                await publisher.start()
                started = time.monotonic()
                urls = await discover_playlists(session, stream, args.all_renditions, timeout=20)
                pollers = {url: Poller(url, args.poll_ms / 1000) for url in urls}
                tasks += [asyncio.create_task(p.run(session), name=f"poll {u}") for u, p in pollers.items()]
                blocking: list[BlockingAnswer] = []
                if server.name == "onair-ll":
                    tasks.append(asyncio.create_task(
                        blocking_reload(session, stream, urls[0], pollers[urls[0]], blocking), name="blocking"))
                await asyncio.sleep(max(0.0, args.seconds - (time.monotonic() - started)))
                phase_end = time.time()
                if server.name == "onair-ll":
                    tasks[-1].cancel()
                    result = (await asyncio.gather(tasks.pop(), return_exceptions=True))[0]
                    if isinstance(result, Exception) and not isinstance(result, asyncio.CancelledError):
                        notes.append(f"blocking reload stopped: {type(result).__name__}: {result}")
                for poller in pollers.values():
                    poller.interval = 0.25  # keep segment starts known while the player runs, cheaply
                player = None
                if browser is not None:
                    player = await player_phase(browser, stream.page_url, args.player_seconds, args.player_settle)
                api_latency = await server.live_latency(session, stream)
                if publisher.proc is not None and publisher.proc.returncode not in (None, 0):
                    notes.append(f"publisher exited with {publisher.proc.returncode} "
                                 f"(see {publisher.log.name}: {publisher.log.read_text(errors='replace')[-300:]!r})")
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await publisher.stop()
            timelines = {_short(url): p.timeline for url, p in pollers.items()}
            if not math.isfinite(publisher.t0):
                raise RuntimeError(f"{server.name}: ffmpeg reported no progress (see {publisher.log})")
            return RunResult(server.name, round_no, publisher.t0, phase_end, timelines, _short(urls[0]), blocking,
                             player, api_latency, notes)
        finally:
            await asyncio.get_running_loop().run_in_executor(None, server.stop)


def _short(url: str) -> str:
    path = urllib.parse.urlsplit(url).path
    return "/".join(path.split("/")[-2:])


# --- report ---------------------------------------------------------------------------------

def print_run(run: RunResult, verbose: bool) -> None:
    inside, first, segs, parts = run.delays()
    line = (f"round {run.round_no} {run.server:<10} segments {len(segs) + len(first):3d} "
            f"(first {first[0]:.3f} s) p50 {percentile(segs, 0.5):.3f} s" if first else
            f"round {run.round_no} {run.server:<10} no segment seen")
    if parts:
        line += f"; parts {len(parts)} p50 {percentile(parts, 0.5):.3f} s"
    if run.blocking:
        line += f"; blocking answers {len(run.blocking)}"
    if run.player is not None:
        lat = [s["latency"] for s in run.player.samples if isinstance(s.get("latency"), (int, float))]
        line += (f"; hls.latency p50 {percentile(lat, 0.5):.2f} s, stalled {run.player.stalled_seconds():.1f} s"
                 if lat else "; player: no samples")
    print(line, flush=True)
    for note in run.notes + (run.player.errors if run.player else []):
        print(f"    note: {note}")
    if run.api_latency is not None:
        print(f"    API live latency: {json.dumps(run.api_latency)}")
    if verbose:
        by_segment: dict[int, list[Sighting]] = {}
        for sighting in inside:
            by_segment.setdefault(sighting.msn, []).append(sighting)
        for msn, group in by_segment.items():
            seg = [s for s in group if s.part is None]
            part_text = " ".join(f"{s.seen - run.t0 - s.media_end:.3f}" for s in group if s.part is not None)
            head = (f"end {seg[0].media_end:7.3f} s delay {seg[0].seen - run.t0 - seg[0].media_end:6.3f} s"
                    if seg else f"{'(in progress)':>28}")
            print(f"    seg {msn:4d} {head}" + (f" | parts {part_text}" if part_text else ""))
        if run.player is not None and run.player.samples:
            e2e = dict(run.publish_to_playhead_by_time())
            series = " ".join(f"{s['latency']:.2f}/" + (f"{e2e[s['now']]:.2f}" if s["now"] in e2e else "-")
                              + f"/{s.get('ahead', 0):.2f}" + ("p" if s.get("paused") else "")
                              + (f"x{s['rate']:g}" if s.get("rate", 1) != 1 else "")
                              for s in run.player.samples if isinstance(s.get("latency"), (int, float)))
            print("    player every 0.5 s, hls.latency/publish-to-playhead/buffered ahead (p: paused, x: rate): "
                  + series)


def print_summary(runs: list[RunResult], args: argparse.Namespace, order: list[str]) -> None:
    load = os.getloadavg()
    print(f"\nmachine: {machine()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"source 1280x720 {FPS} fps ~2.5 Mbps H.264 + AAC, keyframe every {args.keyint:g} s, "
          f"{'live-encoded' if args.live_encode else 'pre-encoded, -re -c copy'}; segment target "
          f"{SEGMENT_TARGET:g} s; onair ladder {args.ladder!r}, part target {args.part_target:g} s; "
          f"{args.rounds} rounds x {args.seconds:g} s; playlist polled every {args.poll_ms:g} ms")
    print("\npublish-to-playlist delay, seconds (first segment apart; p50/p90/max pooled over rounds, "
          "first segment excluded)")
    print(f"{'server':<11} {'rendition':<22} {'first seg':>9} {'n':>4} {'seg p50':>6} {'p90':>6} {'max':>6}"
          f"   {'n':>4} {'part p50':>6} {'p90':>6} {'max':>6}")
    for name in order:
        mine = [r for r in runs if r.server == name]
        if not mine:
            continue
        renditions = list(dict.fromkeys(k for r in mine for k in r.timelines))
        for rendition in renditions:
            first: list[float] = []
            segs: list[float] = []
            parts: list[float] = []
            for run in mine:
                if rendition in run.timelines:
                    _, f, s, p = run.delays(rendition)
                    first += f
                    segs += s
                    parts += p
            first_text = f"{percentile(first, 0.5):9.3f}" if first else f"{'-':>9}"
            print(f"{name:<11} {rendition:<22} {first_text} {len(segs):4d} {summary(segs)}   {len(parts):4d} "
                  f"  {summary(parts)}")
    blocking = [r for r in runs if r.blocking]
    if blocking:
        print("\nblocking playlist reload (onair-ll, _HLS_msn/_HLS_part for the next part), seconds:")
        vs_file = [a.answered - a.mtime for r in blocking for a in r.blocking if a.mtime is not None]
        vs_poll = []
        for run in blocking:
            timeline = run.timelines[run.primary]
            for answer in run.blocking:
                sighting = timeline.sightings.get((answer.msn, answer.part))
                if sighting is not None:
                    vs_poll.append(answer.answered - sighting.seen)
        total = sum(len(r.blocking) for r in blocking)
        print(f"  answers {total}; answer - part file mtime: n {len(vs_file)}  p50/p99/max {summary(vs_file, 0.99)}"
              f"  (target <= 0.100)")
        print(f"  answer - first seen by the {args.poll_ms:g} ms poller: p50/p99/max {summary(vs_poll, 0.99)}")
    players = [r for r in runs if r.player is not None]
    if players:
        print(f"\nhls.js in headless Chromium, sampled every 0.5 s for {args.player_seconds:g} s from "
              f"{args.player_settle:g} s after playback starts, seconds (p50 / p90 / max):")
        print(f"{'server':<11} {'samples':>7} {'hls.latency':>20} {'targetLatency':>13} {'LL mode':>7} {'parts':>5}"
              f" {'publish-to-playhead':>20} {'start':>5} {'stall':>5}  acceptance")
        for name in order:
            mine = [r for r in players if r.server == name]
            if not mine:
                continue
            samples = [s for r in mine for s in r.player.samples]  # type: ignore[union-attr]
            lat = [s["latency"] for s in samples if isinstance(s.get("latency"), (int, float))]
            targets = [s["target"] for s in samples if isinstance(s.get("target"), (int, float))]
            ll = sorted({str(s.get("lowLatencyMode")) for s in samples})
            has_parts = sorted({str(s.get("parts")) for s in samples})
            e2e = [v for r in mine for v in r.publish_to_playhead()]
            starts = [r.player.startup for r in mine if r.player and r.player.startup is not None]
            target = percentile(targets, 0.5)
            if name == "onair-ll":
                bound, label = 2.0, "<= 2.0"
            else:
                bound = 1.5 * SEGMENT_TARGET + target if targets else float("nan")
                label = f"<= 1.5x{SEGMENT_TARGET:g}+{target:.1f}"
            verdict = ("met" if lat and percentile(lat, 0.5) <= bound else "NOT met") if lat else "no samples"
            print(f"{name:<11} {len(samples):7d} {summary(lat):>20} {target:13.2f} {'/'.join(ll):>7} "
                  f"{'/'.join(has_parts):>5} {summary(e2e):>20} {percentile(starts, 0.5):5.1f} "
                  f"{sum(r.player.stalled_seconds() for r in mine if r.player):5.1f}  "
                  f"p50 {label}: {verdict}")
        print("  hls.latency = the player's distance from the live edge of the playlist it has; publish-to-playhead "
              "= wall time - (t0 + source media time at the playhead);\n  start = page open to playing (median); "
              "stall = seconds the playhead stood still, all rounds")
    apis = [(r.server, r.round_no, r.api_latency) for r in runs if r.api_latency is not None]
    if apis:
        print("\nonair API live latency figures (GET /api/broadcasts/{id}, read at the end of each run):")
        for name, round_no, value in apis:
            print(f"  round {round_no} {name}: {json.dumps(value)}")
    elif any(r.server.startswith("onair") for r in runs):
        print("\nonair API: no latency figure in the broadcast's live stats")


# --- main -----------------------------------------------------------------------------

async def bench(args: argparse.Namespace, work: Path) -> int:
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    source: Path | None = None
    if not args.live_encode:
        source = work / "source.flv"
        player_time = args.player_seconds + 20 if args.player else 0
        await asyncio.to_thread(make_source, source, args.seconds + player_time + 6, args.keyint)

    def make(name: str) -> Server:
        extra = args.onair_arg or []
        if name == "onair-ll":
            return OnairServer(work, "lowlatency", args.ladder, args.part_target, extra)
        if name == "onair-ts":
            return OnairServer(work, "mpegts", args.ladder, args.part_target, extra)
        return NginxServer(work)

    runs: list[RunResult] = []
    failed = 0
    playwright_cm = browser = None
    try:
        if args.player:
            from playwright.async_api import async_playwright

            playwright_cm = async_playwright()
            playwright = await playwright_cm.__aenter__()
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for round_no in range(1, args.rounds + 1):
            for name in servers:
                try:
                    run = await run_once(make(name), round_no, args, source, browser)
                except Exception as exc:  # one broken server must not hide the others' figures
                    failed += 1
                    print(f"round {round_no} {name:<10} FAILED: {type(exc).__name__}: {exc}", flush=True)
                    log = work / f"{name}.log"
                    if log.exists():
                        print("    log tail: " + log.read_text(errors="replace")[-1200:].replace("\n", "\n    "))
                    continue
                runs.append(run)
                print_run(run, args.verbose)
    finally:
        if browser is not None:
            await browser.close()
        if playwright_cm is not None:
            await playwright_cm.__aexit__(None, None, None)
    print_summary(runs, args, servers)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, from {', '.join(SERVERS)}")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20, help="publish-to-playlist phase of each run")
    parser.add_argument("--ladder", default="source", help="onair ladder, e.g. source,480p,360p")
    parser.add_argument("--part-target", type=float, default=0.5, help="onair LL-HLS part target, seconds")
    parser.add_argument("--keyint", type=float, default=1.0, help="publisher keyframe interval, seconds (1 or 2)")
    parser.add_argument("--poll-ms", type=float, default=20, help="playlist poll interval, milliseconds")
    parser.add_argument("--all-renditions", action="store_true", help="poll every media playlist, not only the first")
    parser.add_argument("--player", action=argparse.BooleanOptionalAction, default=True,
                        help="hls.js in headless Chromium after the polling phase")
    parser.add_argument("--player-seconds", type=float, default=12, help="player sampling time after playback starts")
    parser.add_argument("--player-settle", type=float, default=1.0,
                        help="seconds after playback starts before sampling begins")
    parser.add_argument("--live-encode", action="store_true", help="encode testsrc2 live instead of -c copy of a file")
    parser.add_argument("--onair-arg", action="append", metavar="ARG",
                        help="extra argument for onair serve (repeat), e.g. --onair-arg=--rtmp-read-coalesce=0")
    parser.add_argument("--verbose", action="store_true", help="every segment's and part's delay")
    args = parser.parse_args()
    unknown = set(s.strip() for s in args.servers.split(",")) - set(SERVERS)
    if unknown:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    for tool in ("ffmpeg", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install ffmpeg nginx libnginx-mod-rtmp)", file=sys.stderr)
            return 2
    if "nginx-rtmp" in args.servers and not Path(NGINX_MODULE).exists():
        print(f"{NGINX_MODULE} missing (apt-get install libnginx-mod-rtmp)", file=sys.stderr)
        return 2
    if args.player and not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} missing (apt-get install chromium), or pass --no-player", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="onair-latency-") as tmp:
        return asyncio.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
