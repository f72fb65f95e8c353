"""A small multilingual hate-speech model: a logistic regression over n-grams of identity-masked text.

    HateModel.load() -> HateModel          the weights shipped in this package (hate_model.json.gz)
    HateModel.score(text, lang) -> float   probability that the comment is hateful

Trained by `moderation/training/train_hate_model.py` (reproducible; the file
says on which data, under which licence, and how it was cross-validated).
"""

from .features import Masker, features, prepare
from .model import HateModel

__all__ = ["HateModel", "Masker", "features", "prepare"]
