"""The labelled developers' half (HateCheck + Multilingual HateCheck), with template ids rebuilt.

The shared files keep HateCheck's cases whose template id is odd, without the
`templ_id` column.  Cases of one template are consecutive in `case_id` and
every kept template is followed by a dropped one, so a template is a run of
consecutive case ids (checked against HateCheck's own file: "I hate women."
… "I hate immigrants." are case ids 1–7, template 1).  The Multilingual
HateCheck languages are translations of the same templates in the same order:
`key` = (functionality, n-th template of that functionality) names a
template across languages, so a fold can hold one template out in *every*
language at once (a translation seen in training would leak it).
"""

from __future__ import annotations

import csv
import os
import zlib
from collections import Counter
from dataclasses import dataclass

__all__ = ["Case", "LANGUAGE_FILES", "load_cases", "fold_of", "default_data_dir"]

#: onair language code -> file under the data folder
LANGUAGE_FILES = {
    "en": "hatecheck_dev.csv", "ar": "mhc/arabic.csv", "nl": "mhc/dutch.csv", "fr": "mhc/french.csv",
    "de": "mhc/german.csv", "hi": "mhc/hindi.csv", "it": "mhc/italian.csv", "zh": "mhc/mandarin.csv",
    "pl": "mhc/polish.csv", "pt": "mhc/portuguese.csv", "es": "mhc/spanish.csv",
}


@dataclass(frozen=True, slots=True)
class Case:
    lang: str
    text: str
    hateful: bool
    functionality: str
    templ: int                 # template number within its file (a run of consecutive case ids)
    key: tuple[str, int]       # the template across languages: (functionality, n-th of it)


def default_data_dir() -> str:
    """../shared/moderation next to the checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "moderation"))


def load_cases(data_dir: str, langs: tuple[str, ...] | None = None) -> list[Case]:
    """Every case of the given languages (default all), in file order."""
    out: list[Case] = []
    for lang, name in LANGUAGE_FILES.items():
        if langs is not None and lang not in langs:
            continue
        with open(os.path.join(data_dir, name), encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        prev: int | None = None
        templ = -1
        key: tuple[str, int] = ("", 0)
        per_func: Counter[str] = Counter()
        for r in rows:
            cid = int(r["case_id"].rsplit("-", 1)[-1])
            if prev is None or cid != prev + 1:
                templ += 1
                key = (r["functionality"], per_func[r["functionality"]])
                per_func[r["functionality"]] += 1
            prev = cid
            out.append(Case(lang, r["test_case"], r["label_gold"] == "hateful", r["functionality"], templ, key))
    return out


def fold_of(key: tuple[str, int], k: int = 5) -> int:
    """The cross-validation fold of a template (stable across runs and languages)."""
    return zlib.crc32(repr(key).encode()) % k
