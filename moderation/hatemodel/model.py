"""Loading and running the hate model; the weights ship inside the package, nothing is downloaded.

The file (`hate_model.json.gz`, written by the training script) holds the
bias, the weight of every kept feature, the identity and slur expressions of
the masker, the prepared sentiment lexicon (`lexicon`), the probability at
which each language is held at "medium" (`thresholds`), and the
template-held-out cross-validation figures measured when it was trained.
A score is the lexicon look-ups, a dictionary look-up per feature and one
logistic: about 0.2–0.5 ms per comment in CPython (docs/benchmarks.md).
"""

from __future__ import annotations

import gzip
import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .features import Masker, features, prepare, prepare_normalized
from .lexicon import Lexicon

__all__ = ["HateModel", "MODEL_PATH"]

MODEL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hate_model.json.gz")


@dataclass(frozen=True)
class HateModel:
    weights: dict[str, float]
    bias: float
    masker: Masker
    meta: dict[str, Any] = field(default_factory=dict)
    lexicon: Lexicon | None = None

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "HateModel":
        masker = Masker(frozenset(doc["identities"]), frozenset(doc["slurs"]))
        lexicon = Lexicon(doc["lexicon"]) if doc.get("lexicon") else None
        meta = {k: v for k, v in doc.items() if k not in ("weights", "identities", "slurs", "bias", "lexicon")}
        return cls({k: float(v) for k, v in doc["weights"].items()}, float(doc["bias"]), masker, meta, lexicon)

    @classmethod
    def load(cls, path: str = MODEL_PATH) -> "HateModel":
        return _load(path)

    def to_dict(self) -> dict[str, Any]:
        doc = {**self.meta, "bias": self.bias, "identities": sorted(self.masker.identities),
               "slurs": sorted(self.masker.slurs), "weights": self.weights}
        if self.lexicon is not None:
            doc["lexicon"] = self.lexicon.entries
        return doc

    def hold_at(self, lang: str | None) -> float:
        """The probability this model holds a comment in `lang` at, at "medium" (chosen by the training script)."""
        return float(self.meta.get("thresholds", {}).get(lang or "", self.meta.get("hold_at", 0.5)))

    def score_prepared(self, prepared: str, lang: str | None = None) -> float:
        """P(hateful) of an already prepared comment (`features.prepare`) read as `lang`."""
        feats = features(prepared, self.masker, self.lexicon, lang)
        if not feats:
            return 1.0 / (1.0 + math.exp(-self.bias))
        w = self.weights
        z = self.bias + sum(w.get(f, 0.0) for f in feats) / math.sqrt(len(feats))
        z = max(-50.0, min(50.0, z))
        return 1.0 / (1.0 + math.exp(-z))

    def score(self, text: str, lang: str | None = None) -> float:
        """P(hateful) of a raw comment read as language `lang`."""
        return self.score_prepared(prepare(text, lang), lang)

    def score_normalized(self, normalized: str, lang: str | None = None) -> float:
        """P(hateful) of a comment already through `moderation.normalize`."""
        return self.score_prepared(prepare_normalized(normalized, lang), lang)


@lru_cache(maxsize=4)
def _load(path: str) -> HateModel:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return HateModel.from_dict(json.load(f))
