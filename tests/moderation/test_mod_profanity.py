"""Profanity: better-profanity's list in one regex, censoring the original text, no Scunthorpe hits."""

import pytest

from moderation.context import CommentContext
from moderation.filters.profanity import censor, compile_wordlist, find_profanity, load_wordlist
from moderation.settings import ModerationSettings

S = ModerationSettings()


def shown(text: str, settings: ModerationSettings = S) -> str:
    return censor(text, find_profanity(CommentContext.create("b", "v", text), settings))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("lol fuck this", "lol **** this"),
        ("what a bunch of bullsh1t", "what a bunch of ****"),
        ("Ｆ𝐔 c.k you", "**** you"),
        ("f.u.c.k off", "**** off"),
        ("fuuuuuck", "****"),
        ("you a$$hole!", "you ****!"),
        ("SHIT happens", "**** happens"),
        ("shhHhhit", "****"),
        ("Dick Van Dyke is a dick", "Dick Van Dyke is a ****"),
    ],
)
def test_censoring(text: str, expected: str) -> None:
    assert shown(text) == expected


SCUNTHORPE = [
    "Scunthorpe General Hospital", "Penistone Community Church", "shitake mushrooms",
    "http://www.cum.qc.ca/", "Dr. Herman I. Libshitz", "magna cum laude", "Super Bowl XXX",
    "Dick Van Dyke", "Tyson Gay", "Arsenal canal", "basement", "assassin", "classic", "glass",
]


@pytest.mark.parametrize("text", SCUNTHORPE)
def test_scunthorpe_untouched(text: str) -> None:
    assert shown(text) == text


def test_wordlist_loaded_from_installed_package() -> None:
    words = load_wordlist()
    assert len(words) > 800 and "fuck" in words
    assert compile_wordlist().search("fuck") is not None


def test_profanity_off_setting() -> None:
    from moderation.filters.profanity import ProfanityFilter

    ctx = CommentContext.create("b", "v", "fuck", now=0.0)
    assert ProfanityFilter().check(ctx, ModerationSettings(profanity=False)) is None
