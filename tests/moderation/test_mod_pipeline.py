"""Pipeline: ordering, verdict shape, fail-closed, settings round trip, non-Latin comments."""

import json
import logging

import pytest

from moderation.context import CommentContext
from moderation.errors import SettingsError
from moderation.pipeline import ModerationPipeline, default_filters
from moderation.settings import LinkPolicy, ModerationSettings, Strictness
from moderation.verdict import Action, FilterResult, Verdict


@pytest.mark.parametrize(
    "text", ["你好，欢迎来到直播间！", "مرحبا بكم في البث المباشر", "😀😂🎉👍", "Привет всем, отличный стрим"]
)
def test_non_latin_and_emoji_published_unchanged(text: str) -> None:
    v = ModerationPipeline().moderate_text("b", "v", text, now=0.0)
    assert v == Verdict(Action.PUBLISH, text, language=v.language)
    assert v.language == {"你": "zh", "م": "ar"}.get(text[0])  # Russian is not one of the eleven: no language


def test_censored_verdict_keeps_rest_of_text() -> None:
    v = ModerationPipeline().moderate_text("b", "v", "that was f.u.c.k.i.n.g great", now=0.0)
    assert v.to_dict() == {"verdict": "publish_censored", "text": "that was **** great",
                           "filter": "profanity", "reason": "profanity", "language": "en", "score": None}


class Boom:
    name = "boom"

    def check(self, ctx: CommentContext, settings: ModerationSettings) -> FilterResult | None:
        raise RuntimeError("model file missing")


def test_filter_that_raises_holds(caplog: pytest.LogCaptureFixture) -> None:
    p = ModerationPipeline(filters=[*default_filters()[:3], Boom(), *default_filters()[3:]])
    with caplog.at_level(logging.ERROR, logger="onair.moderation"):
        v = p.moderate_text("b", "v", "perfectly nice comment", now=0.0)
    assert (v.action, v.text, v.filter, v.reason) == (Action.HOLD, "perfectly nice comment", "boom", "filter_error")
    assert p.errors == 1
    assert "moderation filter boom failed" in caplog.text


def test_settings_provider_that_raises_holds() -> None:
    def provider(_bid: str) -> ModerationSettings:
        raise ConnectionError("redis down")

    v = ModerationPipeline(provider).moderate_text("b", "v", "hi", now=0.0)
    assert (v.action, v.reason) == (Action.HOLD, "filter_error")


def test_clock_used_when_no_time_given() -> None:
    now = [100.0]
    p = ModerationPipeline(lambda _b: ModerationSettings(slow_mode_seconds=5), clock=lambda: now[0])
    assert p.moderate(CommentContext.create("b", "v", "one")).action is Action.PUBLISH
    now[0] = 102.0
    assert p.moderate(CommentContext.create("b", "v", "two")).reason == "slow_mode"


async def test_moderate_async() -> None:
    v = await ModerationPipeline().moderate_async(CommentContext.create("b", "v", "go kill yourself", now=0.0))
    assert v.action is Action.REJECT


def test_settings_round_trip_json() -> None:
    s = ModerationSettings(strictness=Strictness.HIGH, blocked_terms=("spoil*",), allowed_terms=("Twatt",),
                           slow_mode_seconds=3, link_policy=LinkPolicy.ALLOWLIST, allowed_domains=("onair.tv",))
    d = json.loads(json.dumps(s.to_dict()))
    assert ModerationSettings.from_dict(d) == s


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "settings must be a JSON object"),
        ({"strictness": "extreme"}, "strictness must be one of off, low, medium, high"),
        ({"link_policy": "maybe"}, "link_policy must be one of allow, block, allowlist"),
        ({"blocked_terms": "x"}, "blocked_terms must be a list of non-empty strings"),
        ({"slow_mode_seconds": -1}, "slow_mode_seconds must be a number of seconds between 0 and 86400"),
        ({"rate_limit_count": 0}, "rate_limit_count must be an integer between 1 and 1000"),
        ({"rate_limit_count": 10 ** 23}, "rate_limit_count must be an integer between 1 and 1000"),
        ({"rate_limit_count": 1e23}, "rate_limit_count must be an integer between 1 and 1000"),
        ({"max_mentions": 101}, "max_mentions must be an integer between 1 and 100"),
        ({"max_char_run": 501}, "max_char_run must be an integer between 1 and 500"),
        ({"max_emoji": True}, "max_emoji must be an integer between 1 and 500"),
        ({"slow_mode_seconds": float("nan")}, "slow_mode_seconds must be a number of seconds between 0 and 86400"),
        ({"rate_limit_window": float("inf")}, "rate_limit_window must be a number of seconds between 0 and 86400"),
        ({"duplicate_window": 86401}, "duplicate_window must be a number of seconds between 0 and 86400"),
        ({"blocked_terms": ["x" * 101]}, "each of blocked_terms must be at most 100 characters"),
        ({"allowed_terms": ["ok"] * 1001}, "allowed_terms must have at most 1000 entries"),
        ({"allowed_domains": ["a" * 254]}, "each of allowed_domains must be at most 253 characters"),
        ({"strictnes": "low"}, "unknown settings field: strictnes"),
    ],
)
def test_settings_errors(data: object, message: str) -> None:
    with pytest.raises(SettingsError) as e:
        ModerationSettings.from_dict(data)
    assert str(e.value) == message
