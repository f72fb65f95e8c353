"""Language identification, script folding, per-language word lists and the language settings.

Every comment here was written for these tests (none comes from the evaluation sets).
"""

import pytest

from moderation.errors import SettingsError
from moderation.languages import SUPPORTED, fold, identify
from moderation.languages.script import devanagari_to_latin, fold_arabic, fold_romanised_hindi
from moderation.languages.wordlists import LANGUAGES, compile_list, find_listed, load_list
from moderation.normalize import normalize
from moderation.settings import ModerationSettings, Strictness


@pytest.mark.parametrize("text,lang,source", [
    ("Wir sehen uns morgen beim Konzert in der Stadt", "de", "langid"),
    ("On se retrouve demain soir après le travail", "fr", "langid"),
    ("Ci vediamo domani sera dopo il lavoro", "it", "langid"),
    ("Nos vemos mañana por la tarde después del trabajo", "es", "langid"),
    ("A gente se vê amanhã depois do trabalho", "pt", "langid"),
    ("We zien elkaar morgen na het werk", "nl", "langid"),
    ("Do zobaczenia jutro po pracy w mieście", "pl", "langid"),
    ("See you tomorrow after work in the city", "en", "langid"),
    ("kal milte hai yaar, bahut maza aaya", "hi", "romanised"),
    ("कल मिलते हैं", "hi", "script"),
    ("明天见，今天的直播很好看", "zh", "script"),
    ("نراكم غدا بعد العمل", "ar", "script"),
])
def test_identifies_each_language(text: str, lang: str, source: str) -> None:
    g = identify(text)
    assert g.primary == lang and g.source == source and g.confident


def test_short_comment_runs_several_and_the_broadcasts_languages() -> None:
    g = identify("lol ok")
    assert not g.confident and len(g.languages) == 2
    g = identify("lol ok", expected=("de", "fr"))
    assert not g.confident and set(g.languages) == {"de", "fr"}  # ranked among the expected only
    assert identify("🙂🙂", expected=("es",)).languages == ("es",)
    assert identify("🙂🙂").languages == ()


def test_code_switched_comment_gets_both_languages() -> None:
    g = identify("mera din bahut accha tha, see you all at the stream tonight")
    assert g.languages[0] == "hi" and "en" in g.languages and not g.confident
    g = identify("Das war super! 太好了")
    assert g.languages[0] == "zh" and "de" in g.languages and not g.confident


def test_expected_languages_never_hide_a_script() -> None:
    assert identify("你好朋友们", expected=("en",)).languages[0] == "zh"


def test_arabic_letter_variants_fold_to_one_spelling() -> None:
    assert fold_arabic("أَحْمَد") == fold_arabic("احمد") == "احمد"
    assert fold_arabic("مدرسة") == "مدرسه" and fold_arabic("على") == "علي"
    assert fold_arabic("كـــلام") == "كلام" and fold_arabic("٣") == "3"


def test_devanagari_reads_as_romanised_hindi() -> None:
    assert devanagari_to_latin("नमस्ते") == "namaste"
    assert devanagari_to_latin("बुरा") == "bura"
    assert devanagari_to_latin("ज़िंदगी") == "zindagi"
    assert fold("कल मिलते हैं", "hi") == fold("kal milte hain", "hi")
    assert fold_romanised_hindi("bahoot") == fold_romanised_hindi("bahut") == "bahut"
    assert fold_romanised_hindi("nafraat") == "nafrat"


def _listed(text: str, lang: str) -> list[str]:
    return [text[a:b] for a, b in find_listed(normalize(text), lang)]


def test_word_lists_censor_in_their_language_only() -> None:
    assert set(LANGUAGES) == set(SUPPORTED) - {"en"}
    for lang in LANGUAGES:
        assert load_list(lang) and compile_list(lang) is not None
    assert _listed("Was für ein Arschloch!", "de") == ["Arschloch"]
    assert _listed("Was für ein Arschloch!", "nl") == []
    assert _listed("que cabrón eres", "es") == ["cabrón"]
    assert _listed("quel connard", "fr") == ["connard"]
    assert _listed("che stronzo", "it") == ["stronzo"]
    assert _listed("ty chuju", "pl") == ["chuju"]            # inflection
    assert _listed("ekdum chutiya hai", "hi") == ["chutiya"]
    assert _listed("ekdum chutiyaa hai", "hi") == ["chutiyaa"]  # doubled vowel
    assert _listed("你这个傻逼", "zh") == ["傻逼"]
    assert _listed("Du Drecksarschloch", "de") == ["Drecksarschloch"]  # compound


def test_everyday_words_and_identities_are_not_censored() -> None:
    assert _listed("la regina mangia il pesce", "it") == []
    assert _listed("uma cerveja gelada, por favor", "pt") == []
    assert _listed("sou bissexual e feliz", "pt") == []
    assert _listed("zet de pot op het vuur", "nl") == []
    assert _listed("我喜欢喝牛奶", "zh") == []


def test_language_settings_validated_and_round_trip() -> None:
    s = ModerationSettings.from_dict({"languages": ["de", "en"], "language_strictness": {"de": "high", "fr": "off"}})
    assert s.languages == ("de", "en")
    assert s.strictness_for("de") is Strictness.HIGH and s.strictness_for("fr") is Strictness.OFF
    assert s.strictness_for("es") is Strictness.MEDIUM and s.strictness_for(None) is Strictness.MEDIUM
    assert ModerationSettings.from_dict(s.to_dict()) == s
    assert s.to_dict()["language_strictness"] == {"de": "high", "fr": "off"}
    assert ModerationSettings().to_dict()["languages"] == []


@pytest.mark.parametrize("doc,message", [
    ({"languages": ["xx"]}, "languages must be a list of language codes (en, ar, nl, fr, de, hi, it, zh, pl, pt, es)"),
    ({"languages": "de"}, "languages must be a list of language codes (en, ar, nl, fr, de, hi, it, zh, pl, pt, es)"),
    ({"languages": [1]}, "languages must be a list of language codes (en, ar, nl, fr, de, hi, it, zh, pl, pt, es)"),
    ({"languages": ["de", "de"]}, "languages must not repeat a language"),
    ({"language_strictness": ["de"]}, "language_strictness must be an object of language code -> strictness"),
    ({"language_strictness": {"xx": "high"}},
     "language_strictness: unknown language 'xx' (en, ar, nl, fr, de, hi, it, zh, pl, pt, es)"),
    ({"language_strictness": {"de": "max"}}, "language_strictness values must be one of off, low, medium, high"),
    ({"language_strictness": {"de": None}}, "language_strictness values must be one of off, low, medium, high"),
])
def test_bad_language_settings_are_refused(doc: dict, message: str) -> None:
    with pytest.raises(SettingsError) as e:
        ModerationSettings.from_dict(doc)
    assert str(e.value) == message
