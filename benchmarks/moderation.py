"""Benchmark: onair's moderation pipeline vs better-profanity, per language, on templates it never saw.

    python benchmarks/moderation.py [DATA_DIR] [--folds 5]     (default DATA_DIR: ../shared/moderation)

Quality, per language (English HateCheck + the ten Multilingual HateCheck
languages), for the whole pipeline at default settings ("medium") and for
better-profanity's `contains_profanity`, side by side:

- hateful stopped (hold, reject or censor), spelling variations stopped,
  threats blocked (hold/reject), non-hateful blocked (hold/reject;
  better-profanity cannot hold, its column is the share it censors).
- Template-held-out: the hate model is trained afresh for each of 5 folds
  grouped by template (the same template in every language in one fold; see
  moderation/training/data.py) and the pipeline with that fold's model
  judges the held-out templates.  Each fold model's per-language
  thresholds come from the other folds' out-of-fold scores
  (`train_hate_model.fold_models`): the held-out templates choose nothing.  The English rules are hand-written, not
  trained, so their figures are the same either way (some of their words
  were added after reading what they missed on the English dev half: see
  docs/benchmarks.md).

Then: Scunthorpe strings altered, rustrict positives/negatives flagged; per
comment latency per language (whole pipeline with the shipped model vs
better-profanity, alternating rounds); the word-list path ratio; and the
pipeline's latency at 500 comments/s.  Exit 2 if the data folder is missing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from better_profanity import profanity  # noqa: E402

from moderation.context import CommentContext  # noqa: E402
from moderation.filters.hate_model import HateModelFilter  # noqa: E402
from moderation.filters.profanity import find_profanity  # noqa: E402
from moderation.pipeline import ModerationPipeline, default_filters  # noqa: E402
from moderation.settings import ModerationSettings  # noqa: E402
from moderation.training.data import Case, default_data_dir, fold_of, load_cases  # noqa: E402
from moderation.verdict import Action  # noqa: E402

STOPPED = {Action.HOLD, Action.REJECT, Action.PUBLISH_CENSORED}
BLOCKED = {Action.HOLD, Action.REJECT}
_CONTENT_ONLY = ModerationSettings(rate_limit_count=10**9, duplicate_window=0.0)
COLUMNS = ("hateful stopped", "spelling variations stopped", "threats blocked", "non-hateful blocked")
TARGETS = "targets (template-held-out): hateful >= 0.75 and non-hateful <= 0.20 in every language; " \
          "English spelling >= 0.90; Scunthorpe 0/22; whole pipeline p99 <= 5 ms"


def pipeline(model_filter: HateModelFilter | None = None) -> ModerationPipeline:
    """The default pipeline, content-only settings, optionally with another hate model."""
    filters = default_filters()
    if model_filter is not None:
        filters = [model_filter if f.name == "hate_model" else f for f in filters]
    return ModerationPipeline(lambda _b: _CONTENT_ONLY, filters=filters)


def figures(cases: list[Case], stopped: dict[int, bool], blocked: dict[int, bool]) -> dict[str, dict[str, float]]:
    per: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for i, c in enumerate(cases):
        d = per[c.lang]
        if c.hateful:
            d["hateful stopped"].append(stopped[i])
        else:
            d["non-hateful blocked"].append(blocked[i])
        if c.functionality.startswith("spell_"):
            d["spelling variations stopped"].append(stopped[i])
        if c.functionality.startswith("threat_"):
            d["threats blocked"].append(blocked[i])
    return {lang: {k: sum(v) / len(v) for k, v in d.items()} for lang, d in per.items()}


def onair_held_out(cases: list[Case], k: int) -> dict[str, dict[str, float]]:
    from moderation.training.train_hate_model import fold_models

    t0 = time.process_time()
    models = fold_models(cases, k)
    print(f"trained {k} fold models in {time.process_time() - t0:.0f} s CPU", flush=True)
    stopped: dict[int, bool] = {}
    blocked: dict[int, bool] = {}
    for i, m in enumerate(models):
        p = pipeline(HateModelFilter(m))
        for j, c in enumerate(cases):
            if fold_of(c.key, k) == i:
                a = p.moderate(CommentContext.create("bench", "v", c.text, now=float(j))).action
                stopped[j], blocked[j] = a in STOPPED, a in BLOCKED
    return figures(cases, stopped, blocked)


def better_profanity_figures(cases: list[Case]) -> dict[str, dict[str, float]]:
    flags = {i: profanity.contains_profanity(c.text) for i, c in enumerate(cases)}
    return figures(cases, flags, flags)


def latency(cases: list[Case], rounds: int = 3, per_lang: int = 150) -> dict[str, tuple[float, ...]]:
    """Per language, ms: onair wall p50, wall p99, CPU p99 (this thread's CPU time: what the pipeline itself
    costs, without the waits a loaded machine adds), better-profanity p50; alternating rounds, one core."""
    p = pipeline()
    by: dict[str, list[str]] = defaultdict(list)
    for c in cases:
        if len(by[c.lang]) < per_lang:
            by[c.lang].append(c.text)
    out = {}
    n = 0
    for lang, texts in by.items():
        ours: list[float] = []
        ours_cpu: list[float] = []
        theirs: list[float] = []
        for _ in range(rounds):
            for t in texts:
                n += 1
                t0, c0 = time.perf_counter(), time.thread_time()
                p.moderate(CommentContext.create("b", "v", t, now=float(n)))
                ours_cpu.append(time.thread_time() - c0)
                ours.append(time.perf_counter() - t0)
            for t in texts[:30]:
                t0 = time.perf_counter()
                profanity.contains_profanity(t)
                theirs.append(time.perf_counter() - t0)
        ours.sort()
        ours_cpu.sort()
        out[lang] = (ours[len(ours) // 2] * 1e3, ours[int(len(ours) * 0.99)] * 1e3,
                     ours_cpu[int(len(ours_cpu) * 0.99)] * 1e3, statistics.median(theirs) * 1e3)
    return out


def lines(data_dir: str, name: str) -> list[str]:
    with open(os.path.join(data_dir, name), encoding="utf-8") as f:
        return [x.rstrip("\n") for x in f if x.strip() and not x.startswith("#")]


def cpu_rate(fn, texts: list[str]) -> float:
    t0 = time.process_time()
    for x in texts:
        fn(x)
    return len(texts) / max(time.process_time() - t0, 1e-9)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/moderation.py")
    ap.add_argument("data_dir", nargs="?", default=default_data_dir())
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    data_dir = os.path.normpath(args.data_dir)
    if not os.path.isfile(os.path.join(data_dir, "hatecheck_dev.csv")) or not os.path.isdir(os.path.join(data_dir, "mhc")):
        print(f"moderation benchmark: data folder {data_dir} not found (expected hatecheck_dev.csv and mhc/ "
              "there); pass DATA_DIR", file=sys.stderr)
        return 2
    cases = load_cases(data_dir)
    print(f"data: {data_dir} ({len(cases)} cases in {len({c.lang for c in cases})} languages); "
          f"machine: nproc={os.cpu_count()}\n", flush=True)
    ours = onair_held_out(cases, args.folds)
    theirs = better_profanity_figures(cases)
    lat = latency(cases)
    print(f"\n{'lang':5}" + "".join(f"{c:>30}" for c in COLUMNS) + f"{'latency ms: p50 / p99 / CPU p99':>34}")
    print(f"{'':5}" + "".join(f"{'onair / better-profanity':>30}" for _ in COLUMNS)
          + f"{'onair (better-profanity p50)':>34}")
    for lang in ours:
        cells = []
        for c in COLUMNS:
            a, b = ours[lang].get(c), theirs[lang].get(c)
            cells.append("-" if a is None else f"{a:.3f} / {b:.3f}")
        o50, o99, c99, b50 = lat[lang]
        print(f"{lang:5}" + "".join(f"{x:>30}" for x in cells)
              + f"{f'{o50:.2f} / {o99:.2f} / {c99:.2f} ({b50:.2f})':>34}")
    print("(better-profanity cannot hold: its 'blocked' columns are the share it would censor)")

    shipped = pipeline()
    scun = lines(data_dir, "blns_scunthorpe.txt")

    def verdict(t: str):
        return shipped.moderate(CommentContext.create("b", "v", t, now=0.0))

    altered = sum(1 for t in scun if (v := verdict(t)).action is not Action.PUBLISH or v.text != t)
    bp_altered = sum(1 for t in scun if profanity.censor(t) != t)
    rpos, rneg = lines(data_dir, "rustrict_positive.txt"), lines(data_dir, "rustrict_negative.txt")
    flag = lambda t: verdict(t).action in STOPPED  # noqa: E731
    print(f"\nScunthorpe strings altered: onair {altered}/{len(scun)}, better-profanity {bp_altered}/{len(scun)}")
    print(f"rustrict positives flagged: onair {sum(map(flag, rpos)) / len(rpos):.2f}, better-profanity "
          f"{sum(map(profanity.contains_profanity, rpos)) / len(rpos):.2f}; negatives flagged: onair "
          f"{sum(map(flag, rneg)) / len(rneg):.2f}, better-profanity "
          f"{sum(map(profanity.contains_profanity, rneg)) / len(rneg):.2f}")

    texts = [c.text for c in cases[::7]]
    settings = ModerationSettings()
    ratios = []
    for _ in range(5):
        wl = cpu_rate(lambda x: find_profanity(CommentContext.create("b", "v", x), settings), texts[:600])
        bpr = cpu_rate(profanity.contains_profanity, texts[:100])
        ratios.append(wl / bpr)
    print(f"word-list path: {wl:,.0f} comments/s vs better_profanity {bpr:,.0f}/s; "
          f"median ratio over 5 alternating rounds {statistics.median(ratios):.0f}x")

    lat_all = []
    cpu_all = []
    start = time.perf_counter()
    n = 2000
    for i in range(n):
        due = start + i / 500.0
        while time.perf_counter() < due:
            pass
        t0, c0 = time.perf_counter(), time.thread_time()
        shipped.moderate(CommentContext.create("b", f"v{i % 300}", texts[i % len(texts)], now=float(i)))
        cpu_all.append(time.thread_time() - c0)
        lat_all.append(time.perf_counter() - min(t0, due))
    lat_all.sort()
    cpu_all.sort()
    print(f"whole pipeline at 500 comments/s, all languages mixed: p50 {lat_all[n // 2] * 1e3:.3f} ms, "
          f"p99 {lat_all[int(n * 0.99)] * 1e3:.3f} ms, max {lat_all[-1] * 1e3:.3f} ms; CPU per comment p50 "
          f"{cpu_all[n // 2] * 1e3:.3f} ms, p99 {cpu_all[int(n * 0.99)] * 1e3:.3f} ms (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(TARGETS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
