"""What identities cost the chat: a join storm and the steady state, this checkout vs a reference one.

Every join now mints or checks a signed identity, admits it against the bans
(identity and address: one Redis script) and counts it by identity; every
presence round reports the identities a node has (changes only) instead of a
number.  This measures, for the node process alone (CPU from /proc):

- **join**: N viewers connect and say hello at once (``--concurrency`` at a time)
  until each has its history: server CPU per join and the storm's wall time;
- **steady**: the N viewers stay connected for ``--hold`` seconds (presence
  rounds every second, nothing else): server CPU per second.

The reference is another checkout of onair (``--ref DIR``, e.g. main exported with
``git archive main | tar -x -C DIR``) run the same way, alternating A B A B for
``--rounds`` rounds on one Redis; medians and the median of per-round ratios are
printed.  The load generator (this process) is not counted.

    python -m benchmarks.chat_join --ref /tmp/onair-main --viewers 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import free_port, machine, median, own_cpu_seconds  # noqa: E402

ADMIN = "admin_bench_token_0123456789"
#: this checkout's per-address quotas, off: every viewer here comes from 127.0.0.1
NO_QUOTAS = ["--chat-sockets-per-address", "0", "--chat-joins-per-address", "0",
             "--chat-comments-per-address", "0", "--chat-reactions-per-address", "0"]


def start_node(checkout: Path, port: int, redis_url: str, data_dir: Path, extra: list[str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "broadcaster.cli", "serve", "--host", "127.0.0.1", "--http-port", str(port),
           "--rtmp-port", str(free_port()), "--data-dir", str(data_dir), "--admin-token", ADMIN,
           "--redis-url", redis_url, "--log-level", "warning", *extra]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.Popen(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(data_dir / "node.log", "ab"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited: {(data_dir / 'node.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("node did not start")


def create_broadcast(port: int) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/broadcasts", method="POST",
                                 data=json.dumps({"title": "join bench"}).encode(),
                                 headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["id"]


def flush(redis_url: str) -> None:
    import redis
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


async def storm(port: int, broadcast: str, viewers: int, concurrency: int, hold: float,
                pid: int) -> dict[str, float]:
    import aiohttp

    url = f"ws://127.0.0.1:{port}/ws/{broadcast}"
    sockets: list[Any] = []
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def join(i: int) -> None:
            async with gate:
                ws = await session.ws_connect(url, max_msg_size=0, autoping=True)
                await ws.send_str(json.dumps({"type": "hello", "name": f"viewer {i}"}))
                first = json.loads((await ws.receive(timeout=60)).data)
                assert first["type"] == "history", first
                sockets.append(ws)

        cpu0, t0 = own_cpu_seconds(pid), time.monotonic()
        await asyncio.gather(*(join(i) for i in range(viewers)))
        cpu1, t1 = own_cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(2.0)  # the first presence rounds after the storm
        cpu2, t2 = own_cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(hold)  # connected, quiet: presence rounds only
        cpu3, t3 = own_cpu_seconds(pid), time.monotonic()
        for ws in sockets:
            await ws.close()
    return {"join_ms_cpu": (cpu1 - cpu0) / viewers * 1000, "storm_s": t1 - t0,
            "steady_cpu_per_s": (cpu3 - cpu2) / (t3 - t2)}


def run_one(checkout: Path, extra: list[str], args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    flush(args.redis_url)
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(dir=workdir))
    proc = start_node(checkout, port, args.redis_url, data_dir, extra)
    try:
        broadcast = create_broadcast(port)
        return asyncio.run(storm(port, broadcast, args.viewers, args.concurrency, args.hold, proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", type=Path, required=True, help="the reference checkout (e.g. main, exported)")
    parser.add_argument("--viewers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--hold", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default=f"redis://127.0.0.1:{os.environ.get('ONAIR_TEST_REDIS_PORT', '6379')}/14")
    args = parser.parse_args()
    print(f"{machine()}; {args.viewers} viewers, {args.rounds} rounds A/B, load {os.getloadavg()[0]:.1f}")
    results: dict[str, list[dict[str, float]]] = {"this": [], "ref": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            results["this"].append(run_one(ROOT, NO_QUOTAS, args, Path(tmp)))
            results["ref"].append(run_one(args.ref.resolve(), [], args, Path(tmp)))
            print(f"  round: this {results['this'][-1]}  ref {results['ref'][-1]}", flush=True)
    for key in ("join_ms_cpu", "storm_s", "steady_cpu_per_s"):
        ours = [r[key] for r in results["this"]]
        ref = [r[key] for r in results["ref"]]
        ratios = [a / b for a, b in zip(ours, ref) if b]
        print(f"{key:18s} this {median(ours):.4f}  ref {median(ref):.4f}  ratio (median per round) "
              f"{median(ratios):.2f}")
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
