"""Property tests: normalisation and the pipeline never crash and keep their invariants on any text."""

from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.normalize import normalize
from moderation.pipeline import ModerationPipeline
from moderation.settings import ModerationSettings
from moderation.verdict import Action

_PIPE = ModerationPipeline(lambda _b: ModerationSettings(rate_limit_count=10**9, duplicate_window=0.0))
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200) | st.text(
    alphabet="fuckshitass.-_* 1@$!04ＦＵ𝐔\u200bсαÄ", max_size=60
)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_normalize_spans_are_valid(text: str) -> None:
    n = normalize(text)
    assert n.original == text
    assert len(n.spans) == len(n.text)
    for s, e in n.spans:
        assert 0 <= s < e <= len(text)
    assert [s for s, _ in n.spans] == sorted(s for s, _ in n.spans)
    collapsed, spans = n.collapsed()
    assert len(collapsed) == len(spans)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_pipeline_never_fails_and_only_censors(text: str) -> None:
    v = _PIPE.moderate_text("b", "v", text, now=0.0)
    assert v.reason != "filter_error"
    if v.action is Action.PUBLISH:
        assert v.text == text
    if v.action is Action.PUBLISH_CENSORED:
        assert "****" in v.text and v.text != text
