"""Soak: one long broadcast with everything a real one has, and whether the node keeps its size.

A node (``onair serve``, its own process) gets:

- a real ffmpeg RTMP publisher (live x264 + AAC) for the whole run;
- ``--viewers`` chat viewers (200) that join, stay 20-120 s, leave and come back (half of
  them with the identity token the relay gave them, half as someone new), spread over
  ``--addresses`` loopback addresses (127.0.0.x) like people behind different networks;
  together they send ``--comments`` comments and ``--reactions`` reactions a second;
- ``--pollers`` LL-HLS players (20): blocking playlist reloads (``_HLS_msn``/``_HLS_part``)
  of the source rendition and a GET of every new part, as hls.js does.

Every ``--sample`` seconds (10) one CSV row: the node's RSS, open fds and threads, its
workers' RSS, the sizes of its in-memory tables (``onair_state_entries``), what clients hold
(``onair_connections_open``), chat viewers, the broadcast's status and HLS files, and what
the load generator saw (comments delivered, parts fetched, errors).  At the end it prints
the growth of each after the warm-up (the first 5 minutes, or the first fifth of a shorter
run): the target is at most 5 %.

The load generator is this process (not counted); the node runs from ``--checkout`` (this
checkout by default; a snapshot lets one keep editing the tree during a long run).

    python -m benchmarks.soak --minutes 30 --csv benchmarks/results/soak.csv
    python -m benchmarks.soak --minutes 1          # smoke check
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import children, free_port, machine  # noqa: E402

ADMIN = "admin_soak_token_0123456789abcdef"
PAGE = 4096
_PART = re.compile(r'#EXT-X-PART:[^\n]*URI="s(\d+)\.p(\d+)\.m4s"')

STATE_TABLES = ("chat_rooms", "chat_room_viewers", "chat_room_events", "chat_quota_addresses",
                "chat_quota_identities", "chat_sockets", "playlist_positions", "playlist_waited", "caps_addresses",
                "live_sessions", "asyncio_tasks")
OPEN_KINDS = ("http", "ws", "hls_held", "rtmp")


class Load:
    """What the load generator saw."""

    def __init__(self) -> None:
        self.joins = self.leaves = self.join_errors = 0
        self.comments_sent = self.reactions_sent = self.events_received = 0
        self.reloads = self.parts = self.hls_errors = 0


# -- the node -------------------------------------------------------------------------------

def start_node(checkout: Path, data_dir: Path, http_port: int, rtmp_port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "broadcaster.cli", "serve", "--host", "127.0.0.1", "--http-port", str(http_port),
           "--rtmp-port", str(rtmp_port), "--data-dir", str(data_dir), "--admin-token", ADMIN,
           "--log-level", "warning", *extra]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    log = open(data_dir.parent / "node.log", "ab")
    proc = subprocess.Popen(cmd, cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}; see {data_dir.parent / 'node.log'}")
        try:
            import urllib.request
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the node did not answer /healthz in 30 s")


def publisher(url: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
         "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
         "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-b:v", "800k",
         "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "96k", "-f", "flv", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def proc_figures(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    workers = 0
    for child in children(pid):
        try:
            workers += int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{child}/status").read_text()).group(1))  # type: ignore[union-attr]
        except (OSError, AttributeError):
            pass
    return {"rss_kib": rss, "fds": fds, "threads": threads, "workers_rss_kib": workers}


def parse_metrics(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        found[name] = float(value)
    return found


# -- viewers and players ---------------------------------------------------------------------

async def viewer(n: int, base: str, broadcast_id: str, session: aiohttp.ClientSession, load: Load,
                 rates: tuple[float, float], stop: float) -> None:
    """Join, stay a while commenting and reacting, leave; again until ``stop``."""
    comment_rate, react_rate = rates
    token: str | None = None
    rng = random.Random(n)
    await asyncio.sleep(rng.uniform(0, 10))  # not all at once
    while time.monotonic() < stop:
        stay = min(rng.uniform(20, 120), stop - time.monotonic())
        hello: dict[str, Any] = {"type": "hello", "name": f"viewer{n}-{rng.randrange(10**6)}"}
        if token is not None and rng.random() < 0.5:
            hello["token"] = token  # the same person coming back
        try:
            async with session.ws_connect(f"{base.replace('http', 'ws', 1)}/ws/{broadcast_id}", heartbeat=None) as ws:
                await ws.send_str(json.dumps(hello))
                load.joins += 1

                async def read() -> None:
                    nonlocal token
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break
                        for event in _events(message.data):
                            load.events_received += 1
                            if event.get("type") == "history":
                                token = (event.get("you") or {}).get("token") or token

                reader = asyncio.create_task(read())
                left = time.monotonic() + stay
                while time.monotonic() < left and not reader.done():
                    await asyncio.sleep(rng.expovariate(comment_rate + react_rate))
                    if rng.random() < comment_rate / (comment_rate + react_rate):
                        await ws.send_str(json.dumps({"type": "comment", "text": f"nice stream, part {rng.randrange(1000)}"}))
                        load.comments_sent += 1
                    else:
                        await ws.send_str(json.dumps({"type": "react", "kind": rng.choice(["like", "love", "celebrate"])}))
                        load.reactions_sent += 1
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                load.leaves += 1
        except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError):
            load.join_errors += 1
        await asyncio.sleep(rng.uniform(1, 10))  # away a moment, then back


def _events(data: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(data)
    except ValueError:
        return []
    if isinstance(doc, list):
        return [e for e in doc if isinstance(e, dict)]
    if isinstance(doc, dict):
        return doc.get("events") if isinstance(doc.get("events"), list) else [doc]  # type: ignore[return-value]
    return []


async def poller(n: int, base: str, broadcast_id: str, session: aiohttp.ClientSession, load: Load, stop: float) -> None:
    """An LL-HLS player on the source rendition: blocking reloads and every new part."""
    playlist = f"{base}/hls/{broadcast_id}/source/index.m3u8"
    await asyncio.sleep(n * 0.1)
    msn = part = None
    while time.monotonic() < stop:
        url = playlist if msn is None else f"{playlist}?_HLS_msn={msn}&_HLS_part={part}"
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=20)) as resp:
                body = await resp.text()
                load.reloads += 1
                if resp.status != 200:
                    load.hls_errors += resp.status != 404
                    msn = part = None
                    await asyncio.sleep(1)
                    continue
            parts = _PART.findall(body)
            if not parts:
                await asyncio.sleep(0.5)
                continue
            last = parts[-1]
            async with session.get(f"{base}/hls/{broadcast_id}/source/s{last[0]}.p{last[1]}.m4s") as resp:
                await resp.read()
                load.parts += resp.status == 200
            msn, part = int(last[0]), int(last[1]) + 1
        except (aiohttp.ClientError, asyncio.TimeoutError):
            load.hls_errors += 1
            msn = part = None
            await asyncio.sleep(1)


# -- sampling and the run -----------------------------------------------------------------------

async def sampler(node: subprocess.Popen[bytes], base: str, broadcast_id: str, data_dir: Path, load: Load,
                  interval: float, started: float, stop: float, rows: list[dict[str, Any]], out: Path) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as session:
        with out.open("w", newline="") as fh:
            writer: csv.DictWriter[str] | None = None
            while True:
                now = time.monotonic()
                row: dict[str, Any] = {"t_s": round(now - started, 1)}
                row.update(proc_figures(node.pid))
                async with session.get(f"{base}/metrics") as resp:
                    metrics = parse_metrics(await resp.text())
                for table in STATE_TABLES:
                    row[table] = int(metrics.get(f'onair_state_entries{{table="{table}"}}', -1))
                for kind in OPEN_KINDS:
                    row[f"open_{kind}"] = int(metrics.get(f'onair_connections_open{{kind="{kind}"}}', -1))
                row["chat_viewers"] = int(metrics.get("onair_chat_viewers", -1))
                async with session.get(f"{base}/api/broadcasts/{broadcast_id}") as resp:
                    doc = await resp.json()
                row["status"] = doc.get("status")
                live = doc.get("live") or {}
                transcoder = live.get("transcoder") or {}
                row["realtime_factor"] = transcoder.get("realtime_factor")
                row["dropped_units"] = transcoder.get("dropped_units")
                row["publish_to_playlist_s"] = (live.get("publish_to_playlist") or {}).get("last")
                row["hls_files"], row["hls_mib"] = hls_size(data_dir / "hls" / broadcast_id)
                row.update(joins=load.joins, leaves=load.leaves, join_errors=load.join_errors,
                           comments_sent=load.comments_sent, reactions_sent=load.reactions_sent,
                           events_received=load.events_received, reloads=load.reloads, parts=load.parts,
                           hls_errors=load.hls_errors, load1=os.getloadavg()[0])
                rows.append(row)
                if writer is None:
                    writer = csv.DictWriter(fh, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
                fh.flush()
                print(f"[{row['t_s']:7.1f} s] rss {row['rss_kib'] / 1024:.1f} MiB fds {row['fds']} "
                      f"viewers {row['chat_viewers']} tasks {row['asyncio_tasks']} held {row['open_hls_held']} "
                      f"parts {load.parts} events {load.events_received} load {row['load1']:.2f}", flush=True)
                if now >= stop:
                    return
                await asyncio.sleep(max(0.0, min(interval, stop - time.monotonic())))


def hls_size(folder: Path) -> tuple[int, float]:
    """Files and MiB under ``folder`` (the packager renames files meanwhile: a vanished one is skipped)."""
    count = size = 0
    for path in folder.rglob("*"):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if path.is_file():
            count += 1
            size += stat.st_size
    return count, round(size / 2**20, 1)


def growth(rows: list[dict[str, Any]], warmup: float, column: str) -> tuple[float, float, float]:
    """(value at the end of the warm-up, mean of the last three samples, growth in %)."""
    after = [r for r in rows if r["t_s"] >= warmup]
    if len(after) < 2:
        return float("nan"), float("nan"), float("nan")
    start = float(after[0][column])
    end = sum(float(r[column]) for r in after[-3:]) / len(after[-3:])
    return start, end, (end - start) / start * 100 if start else float("nan")


async def run(args: argparse.Namespace) -> int:
    checkout = Path(args.checkout).resolve()
    work = Path(tempfile.mkdtemp(prefix="onair-soak-"))
    data_dir = work / "data"
    http_port, rtmp_port = free_port(), free_port()
    node = start_node(checkout, data_dir, http_port, rtmp_port, ["--ladder", args.ladder, *args.node_option])
    base = f"http://127.0.0.1:{http_port}"
    seconds = args.minutes * 60
    ffmpeg: subprocess.Popen[bytes] | None = None
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
            async with admin.post(f"{base}/api/broadcasts", json={"title": "soak"}) as resp:
                doc = await resp.json()
        broadcast_id, key = doc["id"], doc["stream_key"]
        ffmpeg = publisher(f"rtmp://127.0.0.1:{rtmp_port}/live/{key}", seconds + 30)
        started = time.monotonic()
        stop = started + seconds
        load = Load()
        addresses = [f"127.0.0.{i}" for i in range(2, 2 + args.addresses)]
        sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(a, 0), limit=0))
                    for a in addresses]
        rows: list[dict[str, Any]] = []
        out = Path(args.csv)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            per = (args.comments / max(args.viewers, 1), args.reactions / max(args.viewers, 1))
            tasks = [asyncio.create_task(viewer(i, base, broadcast_id, sessions[i % len(sessions)], load, per, stop))
                     for i in range(args.viewers)]
            tasks += [asyncio.create_task(poller(i, base, broadcast_id, sessions[(i * 7) % len(sessions)], load, stop))
                      for i in range(args.pollers)]
            try:
                await sampler(node, base, broadcast_id, data_dir, load, args.sample, started, stop, rows, out)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for session in sessions:
                await session.close()
    finally:
        if ffmpeg is not None:
            ffmpeg.kill()
            ffmpeg.wait()
        node.terminate()
        try:
            node.wait(30)
        except subprocess.TimeoutExpired:
            node.kill()
    warmup = min(300.0, seconds / 5)
    print(f"\nsoak: {args.minutes:g} min, {args.viewers} viewers, {args.pollers} LL-HLS pollers, ladder "
          f"{args.ladder}; {machine()}; samples in {args.csv}")
    print(f"load generator: {load.joins} joins, {load.join_errors} failed, {load.comments_sent} comments, "
          f"{load.reactions_sent} reactions sent, {load.events_received} events received; "
          f"{load.reloads} playlist reloads, {load.parts} parts, {load.hls_errors} HLS errors")
    print(f"growth after the first {warmup:g} s (value then -> mean of the last 3 samples):")
    worst = 0.0
    for column in ("rss_kib", "fds", "threads", "workers_rss_kib", *STATE_TABLES):
        start, end, pct = growth(rows, warmup, column)
        print(f"  {column:22s} {start:10.0f} -> {end:10.1f}  {pct:+6.1f} %")
        if column in ("rss_kib", "fds") and pct == pct:
            worst = max(worst, pct)
    print(f"worst of node RSS and fds: {worst:+.1f} % (target: <= 5 %)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--pollers", type=int, default=20)
    parser.add_argument("--addresses", type=int, default=20, help="loopback source addresses (127.0.0.2 ...)")
    parser.add_argument("--comments", type=float, default=2.0, help="comments a second, all viewers together")
    parser.add_argument("--reactions", type=float, default=10.0, help="reactions a second, all viewers together")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--ladder", default="source,360p")
    parser.add_argument("--csv", default=str(ROOT / "benchmarks" / "results" / "soak.csv"))
    parser.add_argument("--checkout", default=str(ROOT), help="the onair tree the node runs from")
    parser.add_argument("--node-option", action="append", default=[], help="extra `onair serve` argument (repeat)")
    args = parser.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
