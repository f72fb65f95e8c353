"""The hate model's training script on a tiny labelled set written for this test (not the real data)."""

import csv
from pathlib import Path

from moderation.hatemodel import HateModel, Masker, features
from moderation.training import train_hate_model as T
from moderation.training.data import LANGUAGE_FILES, Case, fold_of, load_cases

GROUPS = ["painters", "sailors", "bakers", "poets", "drummers"]
HATEFUL = ["I loathe all {g}.", "{g} are filthy vermin.", "Every one of the {g} should be thrown out."]
FRIENDLY = ["I admire {g}.", "My best friends are {g}.", "We had lunch with some {g} today."]


def _write(path: Path, templates: list[tuple[str, str, bool]]) -> None:
    """HateCheck-shaped CSV: cases of one template consecutive, a gap of one id between templates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "functionality", "label_gold", "test_case"])
        cid = 1
        for func, template, hateful in templates:
            for g in GROUPS:
                w.writerow([cid, func, "hateful" if hateful else "non-hateful", template.format(g=g)])
                cid += 1
            cid += 1  # the dropped (even) template


def _data(tmp_path: Path) -> Path:
    templates = [("derog_h", t, True) for t in HATEFUL] + [("ident_pos_nh", t, False) for t in FRIENDLY]
    _write(tmp_path / LANGUAGE_FILES["en"], templates)
    return tmp_path


def test_templates_rebuilt_from_case_ids_and_folds_are_stable(tmp_path: Path) -> None:
    cases = load_cases(str(_data(tmp_path)), ("en",))
    assert len(cases) == 30 and len({c.templ for c in cases}) == 6
    assert [c.key for c in cases[:6]] == [("derog_h", 0)] * 5 + [("derog_h", 1)]
    assert fold_of(("derog_h", 0)) == fold_of(("derog_h", 0)) and 0 <= fold_of(("x", 3)) < 5


def test_fillers_are_the_words_that_differ_within_a_template(tmp_path: Path) -> None:
    ident, slurs = T.learn_fillers(load_cases(str(_data(tmp_path)), ("en",)))
    assert ident == set(GROUPS) and slurs == set()
    masked, named = Masker(ident, slurs).mask("i admire painters")
    assert named and masked == "i admire qgrpq"
    assert "HASGRP" in features("i admire painters", Masker(ident, slurs))


def test_trained_model_separates_and_round_trips(tmp_path: Path) -> None:
    model = T.train(load_cases(str(_data(tmp_path)), ("en",)))
    assert model.score("I loathe all bakers.") > 0.5 > model.score("I admire bakers.")
    out = tmp_path / "m.json.gz"
    T.write_model(model, str(out))
    first = out.read_bytes()
    T.write_model(model, str(out))
    assert out.read_bytes() == first  # byte for byte
    again = HateModel.load(str(out))
    assert again.score("I loathe all bakers.") == model.score("I loathe all bakers.")
    assert model.lexicon is not None and again.lexicon.entries == model.lexicon.entries  # AFINN, in the file


def test_blocked_by_functionality_counts_non_hateful_cases_only() -> None:
    cases = [Case("de", "x", False, "ident_pos_nh", 0, ("ident_pos_nh", 0)),
             Case("de", "y", False, "ident_pos_nh", 0, ("ident_pos_nh", 0)),
             Case("fr", "z", False, "ident_pos_nh", 1, ("ident_pos_nh", 0)),
             Case("de", "w", False, "counter_ref_nh", 2, ("counter_ref_nh", 0)),
             Case("de", "v", True, "derog_h", 3, ("derog_h", 0))]
    by = T.blocked_by_functionality(cases, [True, False, True, False, True])
    assert by == {"counter_ref_nh": {"de": 0.0}, "ident_pos_nh": {"de": 0.5, "fr": 1.0}}


def test_cli_reports_a_missing_data_folder(tmp_path: Path, capsys) -> None:
    assert T.main([str(tmp_path / "nope"), "--cv-only"]) == 2
    assert "data not found" in capsys.readouterr().err
