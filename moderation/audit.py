"""The audit log: every host/moderator action and every automatic verdict, readable through the API.

``AuditLog`` is a thin writer over the store that fixes the vocabulary:
actors are ``host``, ``admin``, ``moderator:<label>`` or ``auto``; actions are
the constants below.  Automatic verdicts are recorded only when they matter
(censor, hold, reject): a plain publish is not an event.  Their detail names
the comment's language and the score behind the verdict (filter and reason
name the rule).
"""

from __future__ import annotations

from typing import Any

from .store import AuditEntry, ModerationStore
from .verdict import Action, Verdict

__all__ = ["AUTO", "AuditLog", "ACTIONS"]

AUTO = "auto"

#: every action name the log uses
ACTIONS = ("auto_publish_censored", "auto_hold", "auto_reject", "delete_comment", "timeout", "ban", "unban",
           "purge", "pin", "unpin", "approve_held", "reject_held", "set_settings", "grant_moderator",
           "revoke_moderator", "erase_viewer", "revoke_viewer_tokens")


class AuditLog:
    def __init__(self, store: ModerationStore) -> None:
        self.store = store

    async def record(self, broadcast_id: str, actor: str, action: str, *, viewer_id: str | None = None,
                     comment_id: str | None = None, text: str | None = None, reason: str | None = None,
                     filter: str | None = None, detail: dict[str, Any] | None = None) -> AuditEntry:
        assert action in ACTIONS, action  # a programming error, not input
        return await self.store.append_audit(AuditEntry(broadcast_id, actor, action, viewer_id=viewer_id,
                                                        comment_id=comment_id, text=text, reason=reason,
                                                        filter=filter, detail=detail))

    async def verdict(self, broadcast_id: str, viewer_id: str, text: str, verdict: Verdict) -> AuditEntry | None:
        """Record an automatic verdict; None for a plain publish (not logged)."""
        if verdict.action is Action.PUBLISH:
            return None
        detail: dict[str, Any] = {"shown": verdict.text} if verdict.action is Action.PUBLISH_CENSORED else {}
        if verdict.score is not None:
            detail["score"] = round(verdict.score, 4)
        if verdict.language is not None:
            detail["language"] = verdict.language
        return await self.record(broadcast_id, AUTO, "auto_" + verdict.action.value, viewer_id=viewer_id, text=text,
                                 reason=verdict.reason, filter=verdict.filter, detail=detail or None)

    async def entries(self, broadcast_id: str, after: int = 0, limit: int = 100) -> list[AuditEntry]:
        return await self.store.list_audit(broadcast_id, after, limit)
