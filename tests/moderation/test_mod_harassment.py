"""Harassment scorer at each strictness level, with cases written for onair (not the evaluation data)."""

import pytest

from moderation.pipeline import ModerationPipeline
from moderation.settings import ModerationSettings, Strictness
from moderation.verdict import Action


def verdict(text: str, level: str = "medium"):
    s = ModerationSettings(strictness=Strictness(level))
    return ModerationPipeline(lambda _b: s).moderate_text("b", "v", text, now=0.0)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("go kill yourself", "self_harm"),
        ("just kys already", "self_harm"),
        ("I will burn every last refugee in this town", "threat"),
        ("Jews should all be exterminated", "threat"),
    ],
)
def test_rejected_at_medium(text: str, reason: str) -> None:
    v = verdict(text)
    assert (v.action, v.filter, v.reason) == (Action.REJECT, "harassment", reason)


@pytest.mark.parametrize(
    "text",
    [
        "nobody wants you here, idiot",
        "you are such a pathetic loser",
        "immigrants are vermin",
        "Asians are a plague on this city",
        "h0m0sexuals are disgusting",       # leet on the group
        "lesbians are disgustnig",          # swapped letters
        "refugees are v e r m i n",         # spaced letters
        "I'd rather eat glass than sit near a m u s l i m",
        "Immigrants have no place in this country",
        "A Jewish life is not worth anything",  # negated positive
        "I will stab you",
    ],
)
def test_held_at_medium(text: str) -> None:
    assert verdict(text).action in (Action.HOLD, Action.REJECT)


@pytest.mark.parametrize(
    "text",
    [
        "great stream, thanks!",
        "I love my muslim neighbours",
        "There is no hatred in me for immigrants.",
        "Saying \"refugees are vermin\" is disgusting and wrong.",   # counter-speech quoting hate
        "We must never condone the killing of refugees.",
        "black coffee is disgusting",        # no group meant
        "this boss fight is killing me",
        "I hate Mondays",
        "whatever you say",
    ],
)
def test_published_at_medium(text: str) -> None:
    assert verdict(text).action in (Action.PUBLISH, Action.PUBLISH_CENSORED)


def test_strictness_levels() -> None:
    text = "I hate you"  # plain hostility at a person: only the strict level holds it
    assert verdict(text, "off").action is Action.PUBLISH
    assert verdict(text, "low").action is Action.PUBLISH
    assert verdict(text, "medium").action is Action.PUBLISH
    assert verdict(text, "high").action is Action.HOLD
    insult = "nobody wants you here, idiot"
    assert verdict(insult, "low").action is Action.PUBLISH
    assert verdict(insult, "medium").action is Action.HOLD
    assert verdict(insult, "high").action is Action.HOLD
    threat = "go kill yourself"
    assert verdict(threat, "off").action is Action.PUBLISH
    assert verdict(threat, "low").action is Action.REJECT
    assert verdict(threat, "high").action is Action.REJECT
