"""What the caps cost an HTTP request: node CPU per request, this checkout vs a reference (main).

Every HTTP request now passes ``caps_middleware`` (``broadcaster/caps.py``): a per-address and a
per-node count taken and given back.  Two ``onair serve`` processes run from two checkouts (this
one, and ``--ref DIR``, e.g. main exported with ``git archive main | tar -x -C DIR``); a load
generator (this process, not counted) sends ``GET /healthz`` (the cheapest request there is, so
the middleware's share is the largest it can be) ``--concurrency`` at a time for ``--seconds``,
alternating the two nodes for ``--rounds`` rounds.  CPU is the node's main process from /proc,
its idle rate measured just before each phase and subtracted.

    python -m benchmarks.caps --ref /tmp/onair-main --rounds 6 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import machine, median, own_cpu_seconds  # noqa: E402
from benchmarks._node import BenchNode  # noqa: E402

ADMIN = "admin_caps_bench_token_0123456789"


def node(checkout: Path, work: Path, name: str) -> BenchNode:
    def command(http_port: int, rtmp_port: int) -> list[str]:
        return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(checkout)!r}); "
                "from broadcaster.cli import main; sys.exit(main())",
                "serve", "--host", "127.0.0.1", "--http-port", str(http_port), "--rtmp-port", str(rtmp_port),
                "--data-dir", str(work / name), "--admin-token", ADMIN, "--log-level", "warning"]
    return BenchNode(command, work / f"{name}.log", ADMIN, cwd=checkout, start_timeout=120)


async def load(base: str, seconds: float, concurrency: int) -> int:
    done = 0
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop:
                async with session.get(f"{base}/healthz") as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                done += 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def phase(n: BenchNode, seconds: float, concurrency: int) -> float:
    """µs of node CPU per request, idle rate subtracted."""
    pid = n.proc.pid
    idle0 = own_cpu_seconds(pid)
    time.sleep(1.0)
    idle_rate = own_cpu_seconds(pid) - idle0
    before, t0 = own_cpu_seconds(pid), time.monotonic()
    requests = asyncio.run(load(n.base, seconds, concurrency))
    cpu = own_cpu_seconds(pid) - before - idle_rate * (time.monotonic() - t0)
    return cpu / requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="the reference checkout (e.g. main)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="onair-bench-caps-"))
    nodes = {"this": node(ROOT, work, "this"), "ref": node(Path(args.ref).resolve(), work, "ref")}
    figures: dict[str, list[float]] = {"this": [], "ref": []}
    ratios = []
    try:
        for round_ in range(args.rounds):
            order = ("this", "ref") if round_ % 2 == 0 else ("ref", "this")
            got = {name: phase(nodes[name], args.seconds, args.concurrency) for name in order}
            for name, value in got.items():
                figures[name].append(value)
            ratios.append(got["this"] / got["ref"])
            print(f"round {round_ + 1}: this {got['this']:.0f} µs/request, ref {got['ref']:.0f} µs/request", flush=True)
    finally:
        for n in nodes.values():
            n.stop()
    print(f"\n{machine()}; GET /healthz, {args.concurrency} in flight, {args.seconds:g} s x {args.rounds} rounds")
    print(f"node CPU per request, median: this {median(figures['this']):.0f} µs, ref {median(figures['ref']):.0f} µs; "
          f"median of per-round ratios this/ref: {median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
