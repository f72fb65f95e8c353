"""Benchmark: language identification for moderation — py3langid (what onair uses) vs lingua.

    python benchmarks/langid.py [DATA_DIR] [--python PY]

onair's own `identify()` (first candidate) is measured the same way.  Each
detector runs in its own process (so its memory is its own), restricted
to the languages onair moderates, on every case of the labelled set
(default ../shared/moderation): accuracy per language, load time, memory
added by the import and the model (max RSS), p50/p99 per comment.  lingua
(`lingua-language-detector`) is not a dependency of onair: install it into
another interpreter and pass `--python` to measure it; it is skipped when
missing.  Wheel sizes are printed from the installed files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from moderation.training.data import default_data_dir  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, ROOT)
from moderation.training.data import load_cases
which, data_dir = sys.argv[1], sys.argv[2]
cases = load_cases(data_dir)
codes = ["en", "ar", "nl", "fr", "de", "hi", "it", "zh", "pl", "pt", "es"]
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if which == "onair":
    import py3langid
    from moderation.languages import identify
    from moderation.languages.identify import warm_up
    warm_up()
    detect = lambda t: identify(t).primary
    pkg = os.path.dirname(py3langid.__file__)
elif which == "py3langid":
    import py3langid
    from py3langid.langid import MODEL_FILE, LanguageIdentifier
    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(codes)
    detect = lambda t: ident.classify(t)[0]
    pkg = os.path.dirname(py3langid.__file__)
else:
    import lingua
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder
    langs = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes]
    det = LanguageDetectorBuilder.from_languages(*langs).with_preloaded_language_models().build()
    def detect(t):
        r = det.detect_language_of(t)
        return r.iso_code_639_1.name.lower() if r else "?"
    pkg = os.path.dirname(lingua.__file__)
load = time.perf_counter() - t0
detect("warm up")
rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
lat, ok = [], {}
for c in cases:
    t = time.perf_counter(); got = detect(c.text); lat.append(time.perf_counter() - t)
    ok.setdefault(c.lang, []).append(got == c.lang)
lat.sort()
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(pkg) for f in fs) / 1e6
print(json.dumps({"load_s": load, "rss_mb": rss, "installed_mb": size, "p50_ms": lat[len(lat) // 2] * 1e3,
                  "p99_ms": lat[int(len(lat) * .99)] * 1e3,
                  "accuracy": {k: sum(v) / len(v) for k, v in ok.items()}}))
""".replace("ROOT", repr(ROOT))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/langid.py")
    ap.add_argument("data_dir", nargs="?", default=default_data_dir())
    ap.add_argument("--python", default=sys.executable, help="interpreter with lingua-language-detector installed")
    args = ap.parse_args(argv)
    if not os.path.isdir(os.path.join(args.data_dir, "mhc")):
        print(f"langid benchmark: data folder {args.data_dir} not found; pass DATA_DIR", file=sys.stderr)
        return 2
    for which, py in (("onair", sys.executable), ("py3langid", sys.executable), ("lingua", args.python)):
        r = subprocess.run([py, "-c", _CHILD, which, args.data_dir], capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            print(f"{which}: not measured ({r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode})")
            continue
        d = json.loads(r.stdout)
        acc = " ".join(f"{k}={v:.2f}" for k, v in d["accuracy"].items())
        print(f"{which:10} installed {d['installed_mb']:.1f} MB, load {d['load_s']:.2f} s, +{d['rss_mb']:.0f} MB RSS, "
              f"p50 {d['p50_ms']:.3f} ms, p99 {d['p99_ms']:.3f} ms\n           accuracy: {acc}")
    print("(hi in the set is romanised Hindi: neither detector knows it; onair's identify() = py3langid + script\n"
          " + romanised-Hindi rules, its first candidate counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
