"""Benchmark: onair's moderation pipeline vs better-profanity, side by side, on labelled sets.

    python benchmarks/moderation.py [DATA_DIR]     (default ../shared/moderation)

Prints, for each system: share of hateful HateCheck cases stopped
(hold/reject/censor), share of spell_* cases stopped, share of non-hateful
cases held or rejected, Scunthorpe strings altered, rustrict positives and
negatives flagged, comments per second on one core; then the word-list-path
throughput ratio (alternating rounds, median of per-round ratios) and
latency p99 of the synchronous filters at 500 comments/s and of the whole
step.  Exit 2 if the data folder is missing.
"""

from __future__ import annotations

import csv
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from better_profanity import profanity  # noqa: E402

from moderation.context import CommentContext  # noqa: E402
from moderation.filters.profanity import find_profanity  # noqa: E402
from moderation.pipeline import ModerationPipeline  # noqa: E402
from moderation.settings import ModerationSettings  # noqa: E402
from moderation.verdict import Action  # noqa: E402

STOPPED = {Action.HOLD, Action.REJECT, Action.PUBLISH_CENSORED}
BLOCKED = {Action.HOLD, Action.REJECT}
_CONTENT_ONLY = ModerationSettings(rate_limit_count=10**9, duplicate_window=0.0)


def load(data_dir: str) -> dict[str, list]:
    with open(os.path.join(data_dir, "hatecheck_dev.csv"), encoding="utf-8") as f:
        hc = list(csv.DictReader(f))

    def lines(name: str) -> list[str]:
        with open(os.path.join(data_dir, name), encoding="utf-8") as f:
            return [x.rstrip("\n") for x in f if x.strip() and not x.startswith("#")]

    return {"hatecheck": hc, "scunthorpe": lines("blns_scunthorpe.txt"),
            "rpos": lines("rustrict_positive.txt"), "rneg": lines("rustrict_negative.txt")}


class Onair:
    name = "onair pipeline (medium)"

    def __init__(self) -> None:
        self.p = ModerationPipeline(lambda _b: _CONTENT_ONLY)
        self.t = 0.0

    def verdict(self, text: str):
        self.t += 1.0
        return self.p.moderate(CommentContext.create("bench", "v", text, now=self.t))

    def stopped(self, text: str) -> bool:
        return self.verdict(text).action in STOPPED

    def blocked(self, text: str) -> bool:
        return self.verdict(text).action in BLOCKED

    def altered(self, text: str) -> bool:
        v = self.verdict(text)
        return v.action is not Action.PUBLISH or v.text != text


class BetterProfanity:
    name = "better_profanity"

    def stopped(self, text: str) -> bool:
        return profanity.contains_profanity(text)

    def blocked(self, text: str) -> bool:
        return False  # it only censors

    def altered(self, text: str) -> bool:
        return profanity.censor(text) != text


def quality(system, data) -> dict[str, str]:
    hc = data["hatecheck"]
    hate = [r["test_case"] for r in hc if r["label_gold"] == "hateful"]
    spell = [r["test_case"] for r in hc if r["functionality"].startswith("spell_")]
    nonhate = [r["test_case"] for r in hc if r["label_gold"] == "non-hateful"]
    out = {}
    out["hateful stopped"] = f"{sum(map(system.stopped, hate)) / len(hate):.2f}"
    out["spell_* stopped"] = f"{sum(map(system.stopped, spell)) / len(spell):.2f}"
    if isinstance(system, BetterProfanity):
        nh = sum(map(system.stopped, nonhate)) / len(nonhate)
        out["non-hateful blocked"] = f"{nh:.2f} (censored; it cannot hold)"
    else:
        out["non-hateful blocked"] = f"{sum(map(system.blocked, nonhate)) / len(nonhate):.2f}"
    out["Scunthorpe altered"] = f"{sum(map(system.altered, data['scunthorpe']))}/{len(data['scunthorpe'])}"
    out["rustrict positives flagged"] = f"{sum(map(system.stopped, data['rpos'])) / len(data['rpos']):.2f}"
    out["rustrict negatives flagged"] = f"{sum(map(system.stopped, data['rneg'])) / len(data['rneg']):.2f}"
    return out


def cpu_rate(fn, texts: list[str]) -> float:
    """Comments per CPU second of this process (one core: the loop is single-threaded)."""
    t0 = time.process_time()
    for x in texts:
        fn(x)
    return len(texts) / max(time.process_time() - t0, 1e-9)


def main(argv: list[str]) -> int:
    data_dir = argv[0] if argv else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "moderation")
    data_dir = os.path.normpath(data_dir)
    if not os.path.isfile(os.path.join(data_dir, "hatecheck_dev.csv")):
        print(f"moderation benchmark: data folder {data_dir} not found (expected hatecheck_dev.csv there); "
              "pass DATA_DIR", file=sys.stderr)
        return 2
    data = load(data_dir)
    texts = [r["test_case"] for r in data["hatecheck"]] + data["rpos"] + data["rneg"]
    onair, bp = Onair(), BetterProfanity()
    print(f"data: {data_dir}  ({len(data['hatecheck'])} HateCheck cases, {len(texts)} comments for speed)")
    print(f"machine: nproc={os.cpu_count()}\n")
    rows = {s.name: quality(s, data) for s in (onair, bp)}
    # comments/s, alternating A B A B, median of rounds
    sample = texts[:600]
    pr: list[float] = []
    br: list[float] = []
    for _ in range(3):
        pr.append(cpu_rate(onair.verdict, sample))
        br.append(cpu_rate(bp.stopped, sample[:150]))
    rows[onair.name]["comments/s (one core)"] = f"{statistics.median(pr):,.0f}"
    rows[bp.name]["comments/s (one core)"] = f"{statistics.median(br):,.0f}"
    keys = list(next(iter(rows.values())))
    w = max(map(len, keys)) + 2
    print(f"{'':{w}}{onair.name:>28}{bp.name:>36}")
    for k in keys:
        print(f"{k:{w}}{rows[onair.name][k]:>28}{rows[bp.name][k]:>36}")
    print("targets: hateful >= 0.75, spell >= 0.90, non-hateful blocked <= 0.20, Scunthorpe 0/22\n")

    # word-list path: normalisation + one-regex profanity check vs contains_profanity
    settings = ModerationSettings()
    ratios = []
    for _ in range(5):
        wl = cpu_rate(lambda x: find_profanity(CommentContext.create("b", "v", x), settings), sample)
        bpr = cpu_rate(profanity.contains_profanity, sample[:100])
        ratios.append(wl / bpr)
    print(f"word-list path: {wl:,.0f} comments/s vs better_profanity {bpr:,.0f}/s; "
          f"median ratio over 5 alternating rounds {statistics.median(ratios):.0f}x (target >= 50x)")

    # latency at 500 comments/s: paced arrivals, time each call
    sync = ModerationPipeline(lambda _b: _CONTENT_ONLY)
    sync.filters = [f for f in sync.filters if f.name != "harassment"]
    whole = ModerationPipeline(lambda _b: _CONTENT_ONLY)
    for label, pipe in (("synchronous filters (no classifier)", sync), ("whole step incl. classifier", whole)):
        lat = []
        start = time.perf_counter()
        n = 2000
        for i in range(n):
            due = start + i / 500.0
            while time.perf_counter() < due:
                pass
            t0 = time.perf_counter()
            pipe.moderate(CommentContext.create("b", f"v{i % 300}", texts[i % len(texts)], now=float(i)))
            # queueing delay counts: latency is from the comment's due time
            lat.append(time.perf_counter() - min(t0, due))
        lat.sort()
        print(f"latency at 500 comments/s, {label}: p50 {lat[n // 2] * 1e3:.3f} ms, "
              f"p99 {lat[int(n * 0.99)] * 1e3:.3f} ms, max {lat[-1] * 1e3:.3f} ms")
    print("targets: synchronous filters <= 5 ms p99, whole step <= 50 ms p99")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
