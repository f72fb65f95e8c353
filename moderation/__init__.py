"""onair moderation: verdicts on chat comments before anyone sees them.

Depends on neither `broadcaster` nor `ingest`.  Entry points:

    ModerationPipeline(settings_provider=None, clock=time.monotonic)
        .moderate(ctx) -> Verdict          synchronous, sub-millisecond
        .moderate_async(ctx) -> Verdict
    CommentContext.create(broadcast_id, viewer_id, text, now=None)
    ModerationSettings (to_dict / from_dict)
    normalize(text) -> Normalized
"""

from .context import CommentContext
from .errors import ModerationError, SettingsError
from .normalize import Normalized, normalize
from .pipeline import ModerationPipeline
from .settings import LinkPolicy, ModerationSettings, Strictness
from .verdict import Action, FilterResult, Verdict

__all__ = [
    "Action", "CommentContext", "FilterResult", "LinkPolicy", "ModerationError", "ModerationPipeline",
    "ModerationSettings", "Normalized", "SettingsError", "Strictness", "Verdict", "normalize",
]
