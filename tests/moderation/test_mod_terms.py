"""Per-broadcast blocked terms with wildcards, and allowed terms overriding false positives."""

from moderation.pipeline import ModerationPipeline
from moderation.settings import ModerationSettings
from moderation.verdict import Action


def run(text: str, **kw: object) -> tuple[Action, str, str | None]:
    s = ModerationSettings(**kw)  # type: ignore[arg-type]
    v = ModerationPipeline(lambda _b: s).moderate_text("b", "v", text, now=0.0)
    return v.action, v.text, v.reason


def test_blocked_term_plain_and_evasion() -> None:
    assert run("the ending is a spoiler", blocked_terms=("spoiler",))[0] is Action.REJECT
    assert run("the ending is a sp0iler", blocked_terms=("spoiler",))[2] == "blocked_term"
    assert run("spoilers everywhere", blocked_terms=("spoiler",))[0] is Action.PUBLISH  # whole words


def test_wildcards() -> None:
    assert run("total spoilerfest", blocked_terms=("spoil*",))[0] is Action.REJECT
    assert run("that was crypto-scam", blocked_terms=("*scam",))[0] is Action.REJECT
    assert run("buy c0ins now", blocked_terms=("c*ns",))[0] is Action.REJECT
    assert run("nothing here", blocked_terms=("*",))[0] is Action.PUBLISH  # bare * ignored


def test_allowed_terms_override_profanity_and_blocked() -> None:
    # the Austrian village (renamed in 2021) is a listed word; the host allows the place name only
    assert run("greetings from Fucking, Austria")[1] == "greetings from ****, Austria"
    allowed = ("Fucking, Austria",)
    assert run("greetings from Fucking, Austria", allowed_terms=allowed)[0] is Action.PUBLISH
    assert run("Fucking, Austria is fucking cold", allowed_terms=allowed)[1] == "Fucking, Austria is **** cold"
    assert run("spoil sport", blocked_terms=("spoil*",), allowed_terms=("spoil sport",))[0] is Action.PUBLISH
