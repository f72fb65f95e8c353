"""The pipeline in eleven languages: hate held, ordinary mentions of groups published, counter-speech
quoting hate published, reclaimed slurs, code-switching, per-language strictness and word lists.

Every comment was written for these tests, not taken from the evaluation sets.  These show
behaviour on chosen comments; rates on unseen templates are in benchmarks/moderation.py.
"""

import pytest

from moderation.context import CommentContext
from moderation.hatemodel import HateModel
from moderation.pipeline import ModerationPipeline
from moderation.settings import ModerationSettings, Strictness
from moderation.verdict import Action, Verdict

CONTENT = ModerationSettings(rate_limit_count=10**9, duplicate_window=0.0)
BLOCKED = (Action.HOLD, Action.REJECT)


def verdict(text: str, settings: ModerationSettings = CONTENT) -> Verdict:
    return ModerationPipeline(lambda _b: settings).moderate_text("b", "v", text, now=0.0)


@pytest.mark.parametrize("text,lang", [
    ("Ich kann Ausländer einfach nicht ausstehen, die sind alle Abschaum.", "de"),
    ("Les immigrés sont des parasites qui ruinent ce pays.", "fr"),
    ("Gli immigrati sono feccia, bisogna cacciarli tutti.", "it"),
    ("Los inmigrantes son basura y deberían largarse.", "es"),
    ("Odeio gays, são uns nojentos.", "pt"),
    ("Immigranten zijn tuig en moeten allemaal weg.", "nl"),
    ("Imigranci to śmieci, trzeba ich wszystkich wyrzucić.", "pl"),
    ("gay log bimaar hote hain, sab ko maar do", "hi"),
    ("我讨厌同性恋，他们真恶心。", "zh"),
    ("النساء أغبياء ولا يستحقون شيء", "ar"),
    ("Those immigrants are garbage, kick them all out.", "en"),
])
def test_hate_is_held_and_names_its_language(text: str, lang: str) -> None:
    v = verdict(text)
    assert v.action in BLOCKED and v.language == lang
    assert (v.filter, v.reason) in (("hate_model", "hate_speech"), ("harassment", "hate"))
    assert v.score is not None and 0 < v.score <= 1


@pytest.mark.parametrize("text,lang", [
    ("Meine Nachbarin ist Muslimin und backt den besten Kuchen.", "de"),
    ("Ma collègue est musulmane et elle est très drôle.", "fr"),
    ("Mia sorella è lesbica e sta per sposarsi.", "it"),
    ("Mi vecino es gay y es muy simpático.", "es"),
    ("Minha vizinha é muçulmana e muito simpática.", "pt"),
    ("Mijn buurvrouw is moslim en ze is erg aardig.", "nl"),
    ("Moja sąsiadka jest muzułmanką i jest bardzo miła.", "pl"),
    ("جارتي مسلمة وهي لطيفة جدا", "ar"),
    ("My neighbour is Muslim and very kind.", "en"),
    ("yaar ye stream bahut mast hai, great job everyone", "hi"),
])
def test_ordinary_mentions_are_published(text: str, lang: str) -> None:
    v = verdict(text)
    assert (v.action, v.language) == (Action.PUBLISH, lang)


@pytest.mark.parametrize("text,lang", [
    ("Muslime sind widerliche Parasiten.", "de"),          # groups its templates never named (training adds them)
    ("Muzułmanie to obrzydliwe robactwo.", "pl"),
    ("Les femmes sont des déchets inutiles.", "fr"),
])
def test_hate_against_groups_named_in_other_words_is_held(text: str, lang: str) -> None:
    v = verdict(text)
    assert v.action in BLOCKED and v.language == lang and v.filter == "hate_model"


@pytest.mark.parametrize("text,lang", [
    ("Les femmes sont merveilleuses et tellement courageuses.", "fr"),  # praise: the lexicon's positive words
    ("Los inmigrantes son maravillosos y muy trabajadores.", "es"),
    ("Gli immigrati sono persone meravigliose.", "it"),
    ("Os imigrantes são pessoas maravilhosas e generosas.", "pt"),
    ("Muzułmanie to wspaniali i bardzo życzliwi ludzie.", "pl"),
    ("我觉得同性恋者都很善良，很可爱。", "zh"),
])
def test_praise_of_a_group_is_published(text: str, lang: str) -> None:
    v = verdict(text)
    assert (v.action, v.language) == (Action.PUBLISH, lang)


# Known misses, written for these tests: non-hateful comments naming a group that the model still holds
# (template-held-out, 0.31-0.51 of non-hateful cases are held: docs/benchmarks.md, target 0.20 not met).
# strict: when one starts to publish, move it to the tests above.
@pytest.mark.xfail(strict=True, reason="non-hateful blocked above target (docs/benchmarks.md)")
@pytest.mark.parametrize("text", [
    "我妈妈是移民，她工作很努力。",                         # neutral mention
    "Ich finde Muslime einfach großartig, tolle Nachbarn.",  # praise
    "Ich hasse Muslime nicht, im Gegenteil.",               # negated hate
    "Je n'ai aucune haine envers les immigrés.",            # negated hate
])
def test_known_misses_non_hateful_mentions_held(text: str) -> None:
    assert verdict(text).action is Action.PUBLISH


@pytest.mark.parametrize("text", [
    "\"Flüchtlinge sind Ungeziefer\" zu schreiben ist widerlich und falsch.",
    "Dire que \"les femmes sont inférieures\" est honteux.",
    "Decir \"los gays son enfermos\" es de ignorantes.",
    "有人说“女人都是垃圾”，这种话太恶心了。",
    "Saying \"gay people are sick\" is ignorant.",
])
def test_counter_speech_quoting_hate_is_published(text: str) -> None:
    assert verdict(text).action is Action.PUBLISH


@pytest.mark.parametrize("text", ["gay", "Tyson Gay", "Lesben", "musulmanes", "同性恋"])
def test_a_bare_group_name_is_not_hate(text: str) -> None:
    assert verdict(text).action is Action.PUBLISH


def test_a_short_comment_in_a_certain_language_is_judged() -> None:
    v = verdict("Imigranci to robactwo.")  # three words, certainly Polish
    assert v.action in BLOCKED and v.language == "pl"


def test_a_bare_quote_of_hate_is_still_held() -> None:
    assert verdict("\"Flüchtlinge sind Ungeziefer\"").action in BLOCKED


@pytest.mark.parametrize("text", [
    "I'm a proud queer woman and I love this stream!",
    "we're here, we're queer, get used to it",
    "me and my dykes on bikes crew are riding in the parade",
])
def test_reclaimed_slurs_are_published(text: str) -> None:
    assert verdict(text).action in (Action.PUBLISH, Action.PUBLISH_CENSORED)


def test_code_switched_comments() -> None:
    held = verdict("muslim log gande hote hain, inko desh se nikalo")  # Hindi with English words
    assert held.action in BLOCKED and held.language == "hi"
    ok = verdict("yaar ye stream bahut mast hai, great job everyone")
    assert ok.action is Action.PUBLISH
    mixed = verdict("Das war super! 太好了")  # two scripts: both languages are candidates
    assert mixed.action is Action.PUBLISH and mixed.language == "zh"


def test_strictness_per_language() -> None:
    text = "Les immigrés sont des parasites qui ruinent ce pays."
    off_fr = ModerationSettings(rate_limit_count=10**9, duplicate_window=0.0,
                                language_strictness=(("fr", Strictness.OFF),))
    assert verdict(text, off_fr).action is Action.PUBLISH
    off_de = ModerationSettings(rate_limit_count=10**9, duplicate_window=0.0,
                                language_strictness=(("de", Strictness.OFF),))
    assert verdict(text, off_de).action in BLOCKED
    # English rules follow the English level
    off_en = ModerationSettings(rate_limit_count=10**9, duplicate_window=0.0,
                                language_strictness=(("en", Strictness.OFF),))
    assert verdict("Those immigrants are garbage, kick them all out.", off_en).action is Action.PUBLISH


def test_an_unexpected_language_is_still_moderated() -> None:
    s = ModerationSettings(rate_limit_count=10**9, duplicate_window=0.0, languages=("de", "en"))
    v = verdict("Imigranci to śmieci, trzeba ich wszystkich wyrzucić.", s)
    assert v.action in BLOCKED and v.language == "pl"
    # a short comment is read in the broadcast's languages
    assert verdict("ok danke", s).language in ("de", "en")


def test_profanity_is_censored_in_the_comments_language() -> None:
    v = verdict("Das Spiel war gut, aber der Schiri ist ein Arschloch.")
    assert (v.action, v.text, v.language) == (Action.PUBLISH_CENSORED, "Das Spiel war gut, aber der Schiri ist ein ****.",
                                              "de")
    assert verdict("ma che cazzo dici, guarda che gol!").text == "ma che **** dici, guarda che gol!"
    # the same letters in an English comment are not Dutch profanity ("kut" is Dutch only)
    assert verdict("I will kut the grass tomorrow morning after breakfast").action is Action.PUBLISH
    off = ModerationSettings(rate_limit_count=10**9, duplicate_window=0.0, profanity=False)
    assert verdict("der Schiri ist ein Arschloch, ehrlich", off).action is Action.PUBLISH


def test_model_ships_in_the_package_and_scores_fast_enough_to_run_inline() -> None:
    m = HateModel.load()
    assert 10_000 < len(m.weights) and m.meta["cv"]["de"]["hateful stopped"] > 0
    assert 0.0 <= m.score("hallo zusammen", "de") <= 1.0
    assert m.score("", None) == pytest.approx(m.score("", "de"))


def test_language_identification_failure_fails_closed(monkeypatch) -> None:
    import moderation.pipeline as pl

    def boom(*_a, **_k):
        raise RuntimeError("model missing")
    monkeypatch.setattr(pl, "identify", boom)
    p = ModerationPipeline(lambda _b: CONTENT)
    v = p.moderate(CommentContext.create("b", "v", "hello"))
    assert (v.action, v.filter, v.reason) == (Action.HOLD, "language", "filter_error") and p.errors == 1
