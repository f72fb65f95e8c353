"""A moderator's wildcard term against adversarial comments: does the node stay responsive? (issue 13 §3)

Two measurements, printed as a table:

1. In one process, the time to match one comment against the blocked term
   ``a*a*a*a*a*z`` for comments ``w abab...`` of growing length: the backtracking
   regex terms used to compile to (the reference) next to onair's automata
   (``moderation.wildcard``), alternating, median of ``--rounds``.  The regex is
   only run up to ``--regex-max`` characters (it grows ~n^5; a 500-character comment
   takes minutes).
2. A real node (``onair serve``, embedded defaults) with that term: ``/healthz``
   polled every 20 ms from a thread while nothing happens (A) and while a separate
   process posts 500-character adversarial comments through the chat from 8 viewers
   (B), alternating A B for ``--rounds`` rounds of ``--seconds`` each; median, p99 and
   max latency of each.

    python -m benchmarks.healthz_stall --rounds 3 --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks._measure import free_port, machine, median

TERM = "a*a*a*a*a*z"
ADMIN = "bench_healthz_admin_0123456789"
AUTHORS = 8


def comment(n: int, length: int = 500) -> str:
    head = f"w{n} "
    return head + "ab" * ((length - len(head)) // 2)


# --- 1. one comment, in process -------------------------------------------------------------

def matcher_table(rounds: int, regex_max: int) -> None:
    from moderation.normalize import normalize
    from moderation.wildcard import compile_terms

    regex = re.compile(r"(?<![^\W_])a[^\W_]*a[^\W_]*a[^\W_]*a[^\W_]*a[^\W_]*z(?![^\W_])")
    automata = compile_terms((TERM,))
    assert automata is not None
    print("\none comment against the blocked term", TERM)
    print(f"{'chars':>6} {'backtracking regex':>20} {'onair automata':>16}")
    for length in (60, 100, 140, 180, 500):
        text = normalize(comment(0, length)).text
        regex_times, automata_times = [], []
        for _ in range(rounds):
            if length <= regex_max:
                started = time.perf_counter()
                regex.search(text)
                regex_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            automata.found(text)
            automata_times.append(time.perf_counter() - started)
        shown = f"{median(regex_times) * 1000:17.2f} ms" if regex_times else f"{'(not run)':>20}"
        print(f"{length:>6} {shown} {median(automata_times) * 1000:13.3f} ms")


# --- 2. a real node ---------------------------------------------------------------------------

def _request(base: str, method: str, path: str, body: object, token: str) -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _poll(url: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as resp:
            resp.read()
        latencies.append(time.perf_counter() - started)
        time.sleep(0.02)
    return latencies


async def _post(ws_url: str, seconds: float) -> int:
    """The load generator (its own process): adversarial comments from AUTHORS viewers, as fast as answered."""
    import aiohttp

    posted = 0
    async with aiohttp.ClientSession() as session:
        sockets = []
        for i in range(AUTHORS):
            ws = await session.ws_connect(ws_url)
            await ws.send_str(json.dumps({"type": "hello", "name": f"author{i}"}))
            sockets.append(ws)
        deadline = time.monotonic() + seconds

        async def author(ws: aiohttp.ClientWebSocketResponse, index: int) -> None:
            nonlocal posted
            n = index
            while time.monotonic() < deadline:
                await ws.send_str(json.dumps({"type": "comment", "text": comment(n)}))
                posted += 1
                n += AUTHORS
                await asyncio.sleep(0.34)  # under the chat's 3 comments/s per viewer
        await asyncio.gather(*(author(ws, i) for i, ws in enumerate(sockets)))
        for ws in sockets:
            await ws.close()
    return posted


def node_table(rounds: int, seconds: float) -> None:
    http, rtmp = free_port(), free_port()
    data = Path(tempfile.mkdtemp(prefix="onair-stall-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    node = subprocess.Popen([sys.executable, "-m", "broadcaster.cli", "serve", "--host", "127.0.0.1", "--http-port",
                             str(http), "--rtmp-port", str(rtmp), "--data-dir", str(data / "data"),
                             "--admin-token", ADMIN, "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{http}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        doc = _request(base, "POST", "/api/broadcasts", {"title": "stall"}, ADMIN)
        _request(base, "PUT", f"/api/broadcasts/{doc['id']}/moderation/settings",
                 {"blocked_terms": [TERM], "rate_limit_count": 1000}, doc["host_token"])
        idle: list[float] = []
        loaded: list[float] = []
        posted = 0
        for _ in range(rounds):
            idle += _poll(base + "/healthz", seconds)
            poster = subprocess.Popen([sys.executable, "-m", "benchmarks.healthz_stall", "--post",
                                       f"ws://127.0.0.1:{http}/ws/{doc['id']}", "--seconds", str(seconds)],
                                      stdout=subprocess.PIPE, text=True)
            result: list[list[float]] = []
            poller = threading.Thread(target=lambda: result.append(_poll(base + "/healthz", seconds)))
            poller.start()
            out, _ = poster.communicate(timeout=seconds * 20 + 60)
            poller.join()
            loaded += result[0]
            posted += int(out.strip() or 0)
        print(f"\n/healthz of a node with the blocked term {TERM}, {rounds} rounds of {seconds:g} s")
        print(f"{'':<44} {'answers':>8} {'median':>9} {'p99':>9} {'max':>9}")
        for name, values in (("A: idle", idle), (f"B: {posted} adversarial comments posted", loaded)):
            ordered = sorted(values)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(f"{name:<44} {len(values):>8} {median(values) * 1000:>6.1f} ms {p99 * 1000:>6.1f} ms "
                  f"{ordered[-1] * 1000:>6.1f} ms")
    finally:
        node.terminate()
        node.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--regex-max", type=int, default=180, help="longest comment the regex reference is run on")
    parser.add_argument("--post", metavar="WS_URL", help=argparse.SUPPRESS)  # the load generator's own process
    args = parser.parse_args()
    if args.post:
        print(asyncio.run(_post(args.post, args.seconds)))
        return 0
    print(f"{machine()}; load average {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    matcher_table(args.rounds, args.regex_max)
    node_table(args.rounds, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
