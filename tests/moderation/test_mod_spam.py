"""Spam: rate limit, duplicates, link policy, flooding, mentions; slow mode; bans and timeouts."""

from moderation.context import CommentContext
from moderation.filters.spam import SpamFilter
from moderation.pipeline import ModerationPipeline
from moderation.settings import LinkPolicy, ModerationSettings
from moderation.verdict import Action


def pipe(settings: ModerationSettings) -> ModerationPipeline:
    return ModerationPipeline(lambda _b: settings)


def test_rate_limit_per_viewer() -> None:
    p = pipe(ModerationSettings(rate_limit_count=3, rate_limit_window=10.0))
    got = [p.moderate_text("b", "alice", f"msg {i}", now=float(i) * 0.1).reason for i in range(4)]
    assert got == [None, None, None, "rate_limited"]
    assert p.moderate_text("b", "bob", "hi", now=0.5).action is Action.PUBLISH   # other viewer unaffected
    assert p.moderate_text("b", "alice", "later", now=20.0).action is Action.PUBLISH  # window passed


def test_duplicates() -> None:
    p = pipe(ModerationSettings(duplicate_window=30.0))
    assert p.moderate_text("b", "v", "first!", now=0.0).action is Action.PUBLISH
    assert p.moderate_text("b", "v", "FIRST!!!", now=5.0).reason == "duplicate"
    assert p.moderate_text("b", "v2", "first!", now=5.0).action is Action.PUBLISH
    assert p.moderate_text("b", "v", "first!", now=40.0).action is Action.PUBLISH


def test_link_policy() -> None:
    text = "free coins at https://scam.example.com/x"
    assert pipe(ModerationSettings()).moderate_text("b", "v", text, now=0).action is Action.PUBLISH
    assert pipe(ModerationSettings(link_policy=LinkPolicy.BLOCK)).moderate_text("b", "v", text, now=0).reason == "link_blocked"
    allow = ModerationSettings(link_policy=LinkPolicy.ALLOWLIST, allowed_domains=("onair.tv",))
    assert pipe(allow).moderate_text("b", "v", text, now=0).reason == "link_not_allowed"
    assert pipe(allow).moderate_text("b", "v", "replay at www.onair.tv/r/1", now=0).action is Action.PUBLISH
    assert pipe(allow).moderate_text("b", "v", "see clips.onair.tv", now=0).action is Action.PUBLISH


def test_flooding_and_mentions() -> None:
    p = pipe(ModerationSettings())
    assert p.moderate_text("b", "a", "wooooooooooooooooooow", now=0).reason == "char_flood"
    assert p.moderate_text("b", "c", "😂👍🎉" * 10, now=0).reason == "emoji_flood"
    assert p.moderate_text("b", "d", "😂👍🎉", now=0).action is Action.PUBLISH
    assert p.moderate_text("b", "e", " ".join(f"@user{i}" for i in range(8)), now=0).reason == "mention_spam"
    assert p.moderate_text("b", "f", "@host great show", now=0).action is Action.PUBLISH


def test_spam_state_is_bounded() -> None:
    f = SpamFilter(max_viewers=50)
    s = ModerationSettings()
    for i in range(500):
        f.check(CommentContext.create("b", f"v{i}", "hello", now=float(i)), s)
    assert len(f._rate) <= 50 and len(f._recent) <= 50


def test_slow_mode() -> None:
    p = pipe(ModerationSettings(slow_mode_seconds=10))
    assert p.moderate_text("b", "v", "one", now=0.0).action is Action.PUBLISH
    v = p.moderate_text("b", "v", "two", now=5.0)
    assert (v.action, v.filter, v.reason) == (Action.REJECT, "slow_mode", "slow_mode")
    assert p.moderate_text("b", "other", "hey", now=5.0).action is Action.PUBLISH
    assert p.moderate_text("b", "v", "three", now=10.5).action is Action.PUBLISH
