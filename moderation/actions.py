"""Host and moderator actions, and the privacy tools, independent of HTTP.

``ModerationActions`` turns one request into effects on the chat (through the
``ChatControl`` interface, which the node's chat state implements: history,
removals, pins, bans — their one record — and the held queue, all shared by
every node) and on the moderation store, and records each one in the audit
log.  Errors:

    ModerationError (moderation.errors)
    └── ActionError            an action cannot be done (exact message)
        ├── InvalidInput       bad arguments (also a ValueError)        -> HTTP 400
        ├── NotFound           no such held comment / grant / comment   -> HTTP 404
        └── Conflict           the state forbids it                    -> HTTP 409
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Protocol

from .audit import AuditLog
from .errors import ModerationError, SettingsError
from .screening import SettingsCache
from .settings import ModerationSettings
from .bans import BanRecord
from .store import ModerationStore, ModeratorGrant, hash_token

__all__ = ["ActionError", "ChatControl", "Conflict", "InvalidInput", "ModerationActions", "NotFound",
           "MAX_TIMEOUT", "MAX_LABEL", "MAX_REASON"]

MAX_TIMEOUT = 7 * 24 * 3600.0
MAX_REASON = 500
MAX_LABEL = 64


class ActionError(ModerationError):
    """A host action cannot be carried out."""


class InvalidInput(ActionError, ValueError):
    pass


class NotFound(ActionError):
    pass


class Conflict(ActionError):
    pass


class ChatControl(Protocol):
    """What the actions need from the chat (every call acts on every node)."""

    async def history(self, broadcast_id: str) -> list[dict[str, Any]]:
        """Retained comments, oldest first, removed ones marked ``removed``."""
    async def remove_comment(self, broadcast_id: str, comment_id: str) -> bool: ...
    async def forget_comments(self, broadcast_id: str, comment_ids: list[str]) -> None:
        """Erase the stored text of removed comments (right of erasure)."""
    async def list_held(self, broadcast_id: str) -> list[dict[str, Any]]:
        """Held comments: comment fields plus ``held_id``, ``reason``, ``filter``."""
    async def publish_held(self, broadcast_id: str, held_id: str) -> dict[str, Any] | None: ...
    async def reject_held(self, broadcast_id: str, held_id: str) -> bool: ...
    async def pinned(self, broadcast_id: str) -> dict[str, Any] | None: ...
    async def set_pinned(self, broadcast_id: str, comment: dict[str, Any] | None) -> None: ...
    async def ban(self, record: BanRecord, address: bool = False) -> BanRecord:
        """Keep the ban (``until`` None) or timeout, on every node; with ``address``, over the viewer's
        network address too: returns the record as kept, naming the chat's key for the address
        (raises ``LookupError`` when none is known)."""
    async def unban(self, broadcast_id: str, viewer_id: str) -> bool:
        """Lift it; whether there was one."""
    async def bans(self, broadcast_id: str | None = None) -> list[BanRecord]:
        """Active bans and timeouts (of one broadcast, or all when None), oldest first."""
    async def access_changed(self, broadcast_id: str) -> None:
        """Tell every node that the broadcast's bans or viewer-token epoch changed (their playback
        gates reload them)."""


def _reason(reason: Any) -> str | None:
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise InvalidInput("'reason' must be a string")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"'reason' is longer than {MAX_REASON} characters")
    return reason or None


def _author_id(comment: dict[str, Any]) -> str | None:
    author = comment.get("author")
    return str(author.get("id")) if isinstance(author, dict) and author.get("id") is not None else None


class ModerationActions:
    def __init__(self, store: ModerationStore, chat: ChatControl, cache: SettingsCache | None = None) -> None:
        self.store = store
        self.chat = chat
        self.audit = AuditLog(store)
        self.cache = cache or SettingsCache(store)

    # --- comments -----------------------------------------------------------------------
    async def _find(self, broadcast_id: str, comment_id: str) -> dict[str, Any] | None:
        for comment in await self.chat.history(broadcast_id):
            if comment.get("id") == comment_id:
                return comment
        return None

    async def delete_comment(self, broadcast_id: str, actor: str, comment_id: str,
                             reason: Any = None) -> dict[str, Any]:
        why = _reason(reason)
        # The removal goes out first: the audit write must not delay it.
        comment = await self._find(broadcast_id, comment_id)
        await self.chat.remove_comment(broadcast_id, comment_id)
        pinned = await self.chat.pinned(broadcast_id)
        if pinned is not None and pinned.get("id") == comment_id:
            await self.chat.set_pinned(broadcast_id, None)
        await self.audit.record(broadcast_id, actor, "delete_comment", comment_id=comment_id, reason=why,
                                viewer_id=_author_id(comment) if comment else None,
                                text=comment.get("text") if comment else None)
        return {"comment_id": comment_id, "removed": True, "in_history": comment is not None}

    async def purge(self, broadcast_id: str, actor: str, viewer_id: str, reason: Any = None) -> dict[str, Any]:
        why = _reason(reason)
        removed = []
        for comment in await self.chat.history(broadcast_id):
            if _author_id(comment) == viewer_id and not comment.get("removed"):
                await self.chat.remove_comment(broadcast_id, comment["id"])
                removed.append(comment["id"])
        await self.audit.record(broadcast_id, actor, "purge", viewer_id=viewer_id, reason=why,
                                detail={"removed": removed})
        return {"viewer_id": viewer_id, "removed": removed}

    async def pin(self, broadcast_id: str, actor: str, comment_id: Any) -> dict[str, Any]:
        if not isinstance(comment_id, str) or not comment_id:
            raise InvalidInput("'comment_id' is required and must be a string")
        comment = await self._find(broadcast_id, comment_id)
        if comment is None or comment.get("removed"):
            raise NotFound(f"no comment {comment_id[:64]!r} in the recent history of this broadcast")
        await self.chat.set_pinned(broadcast_id, comment)
        await self.audit.record(broadcast_id, actor, "pin", comment_id=comment_id, viewer_id=_author_id(comment),
                                text=comment.get("text"))
        return {"pinned": comment_id}

    async def unpin(self, broadcast_id: str, actor: str) -> dict[str, Any]:
        current = await self.chat.pinned(broadcast_id)
        await self.chat.set_pinned(broadcast_id, None)
        await self.audit.record(broadcast_id, actor, "unpin", comment_id=current.get("id") if current else None)
        return {"pinned": None}

    # --- viewers -----------------------------------------------------------------------
    async def timeout(self, broadcast_id: str, actor: str, viewer_id: str, seconds: Any,
                      reason: Any = None) -> dict[str, Any]:
        why = _reason(reason)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 1 <= seconds <= MAX_TIMEOUT:
            raise InvalidInput(f"'seconds' must be a number between 1 and {int(MAX_TIMEOUT)}")
        now = time.time()
        await self.chat.ban(BanRecord(broadcast_id, viewer_id, now + seconds, actor, why, now))
        await self.audit.record(broadcast_id, actor, "timeout", viewer_id=viewer_id, reason=why,
                                detail={"seconds": seconds})
        return {"viewer_id": viewer_id, "until": now + seconds}

    async def ban(self, broadcast_id: str, actor: str, viewer_id: str, reason: Any = None,
                  address: Any = False) -> dict[str, Any]:
        """Ban until unbanned; ``address``: the viewer's network address too (every identity from it)."""
        why = _reason(reason)
        if not isinstance(address, bool):
            raise InvalidInput("'address' must be true or false")
        now = time.time()
        try:
            await self.chat.ban(BanRecord(broadcast_id, viewer_id, None, actor, why, now), address)
        except LookupError as exc:
            raise Conflict(str(exc)) from None
        # A ban also ends the viewer's playback of a restricted broadcast: after the write, so the
        # nodes that reload find it.
        await self.chat.access_changed(broadcast_id)
        await self.audit.record(broadcast_id, actor, "ban", viewer_id=viewer_id, reason=why,
                                detail={"address": True} if address else None)
        return {"viewer_id": viewer_id, "banned": True, "address": address}

    async def unban(self, broadcast_id: str, actor: str, viewer_id: str, reason: Any = None) -> dict[str, Any]:
        why = _reason(reason)
        existed = await self.chat.unban(broadcast_id, viewer_id)
        await self.chat.access_changed(broadcast_id)
        await self.audit.record(broadcast_id, actor, "unban", viewer_id=viewer_id, reason=why)
        return {"viewer_id": viewer_id, "banned": False, "was_banned": existed}

    async def bans(self, broadcast_id: str) -> list[BanRecord]:
        return await self.chat.bans(broadcast_id)

    async def revoke_viewer_tokens(self, broadcast_id: str, actor: str, reason: Any = None) -> dict[str, Any]:
        """Every viewer token and playback grant issued so far for the broadcast stops working
        (chat and playback, on every node); new ones carry the new epoch."""
        why = _reason(reason)
        epoch = await self.store.raise_token_epoch(broadcast_id)
        await self.chat.access_changed(broadcast_id)
        await self.audit.record(broadcast_id, actor, "revoke_viewer_tokens", reason=why, detail={"epoch": epoch})
        return {"epoch": epoch}

    # --- held queue --------------------------------------------------------------------------
    async def held(self, broadcast_id: str) -> list[dict[str, Any]]:
        items = await self.chat.list_held(broadcast_id)
        return sorted(items, key=lambda h: h.get("ts", 0))

    async def approve_held(self, broadcast_id: str, actor: str, held_id: str) -> dict[str, Any]:
        comment = await self.chat.publish_held(broadcast_id, held_id)
        if comment is None:
            raise NotFound(f"no held comment {held_id[:64]!r} (unknown or already handled)")
        await self.audit.record(broadcast_id, actor, "approve_held", viewer_id=_author_id(comment),
                                comment_id=comment.get("id"), text=comment.get("text"), detail={"held_id": held_id})
        return {"held_id": held_id, "comment": comment}

    async def reject_held(self, broadcast_id: str, actor: str, held_id: str, reason: Any = None) -> dict[str, Any]:
        why = _reason(reason)
        item = next((h for h in await self.chat.list_held(broadcast_id) if h.get("held_id") == held_id), None)
        if not await self.chat.reject_held(broadcast_id, held_id):
            raise NotFound(f"no held comment {held_id[:64]!r} (unknown or already handled)")
        await self.audit.record(broadcast_id, actor, "reject_held", reason=why, detail={"held_id": held_id},
                                viewer_id=_author_id(item) if item else None,
                                text=item.get("text") if item else None)
        return {"held_id": held_id, "rejected": True}

    # --- settings -------------------------------------------------------------------------------
    async def settings(self, broadcast_id: str) -> ModerationSettings:
        self.cache.invalidate(broadcast_id)
        return await self.cache.get(broadcast_id)

    async def update_settings(self, broadcast_id: str, actor: str, changes: dict[str, Any]) -> ModerationSettings:
        """Merge ``changes`` (any subset of the fields) into the current settings."""
        current = await self.settings(broadcast_id)
        try:
            updated = ModerationSettings.from_dict({**current.to_dict(), **changes})
        except SettingsError as exc:
            raise InvalidInput(str(exc)) from None
        await self.store.put_settings(broadcast_id, updated.to_dict())
        self.cache.invalidate(broadcast_id)
        await self.audit.record(broadcast_id, actor, "set_settings",
                                detail={k: updated.to_dict()[k] for k in changes})
        return updated

    # --- moderators -----------------------------------------------------------------------------
    async def grant_moderator(self, broadcast_id: str, actor: str, label: Any) -> tuple[ModeratorGrant, str]:
        if not isinstance(label, str) or not label.strip():
            raise InvalidInput("'label' is required and must be a non-empty string")
        label = " ".join(label.split())
        if len(label) > MAX_LABEL:
            raise InvalidInput(f"'label' is longer than {MAX_LABEL} characters")
        token = "mod_" + secrets.token_urlsafe(24)
        grant = ModeratorGrant("g_" + secrets.token_urlsafe(6), broadcast_id, label, time.time(), actor)
        await self.store.add_grant(grant, hash_token(token))
        await self.audit.record(broadcast_id, actor, "grant_moderator", detail={"grant_id": grant.id,
                                                                                "label": label})
        return grant, token

    async def revoke_moderator(self, broadcast_id: str, actor: str, grant_id: str) -> None:
        if not await self.store.delete_grant(broadcast_id, grant_id):
            raise NotFound(f"no moderator grant {grant_id[:64]!r} on this broadcast")
        await self.audit.record(broadcast_id, actor, "revoke_moderator", detail={"grant_id": grant_id})

    async def moderators(self, broadcast_id: str) -> list[ModeratorGrant]:
        return await self.store.list_grants(broadcast_id)

    async def moderator_for(self, token: str) -> ModeratorGrant | None:
        """The grant a moderator token stands for, if any."""
        if not token.startswith("mod_"):
            return None
        return await self.store.find_grant(hash_token(token))

    # --- privacy ------------------------------------------------------------------------------------
    async def export_viewer(self, viewer_id: str) -> dict[str, Any]:
        """Everything kept about the comments of ``viewer_id`` (right of access)."""
        comments = await self.store.viewer_comments(viewer_id)
        broadcasts = sorted({c.broadcast_id for c in comments})
        held = []
        for bid in broadcasts:
            held += [{**h, "broadcast_id": bid} for h in await self.chat.list_held(bid)
                     if _author_id(h) == viewer_id]
        return {"viewer_id": viewer_id, "exported_at": time.time(), "broadcasts": broadcasts,
                "comments": [c.to_dict() for c in comments], "held": held,
                "bans": [b.public() for b in await self.chat.bans() if b.viewer_id == viewer_id]}

    async def erase_viewer(self, viewer_id: str, actor: str) -> dict[str, Any]:
        """Right of erasure: the viewer's comments leave history, screens, the held queue,
        the archive and the audit log's text copies."""
        archived = await self.store.viewer_comments(viewer_id)
        broadcasts = sorted({c.broadcast_id for c in archived})
        removed: list[str] = []
        held_dropped = 0
        for bid in broadcasts:
            mine = [c["id"] for c in await self.chat.history(bid) if _author_id(c) == viewer_id]
            for comment_id in mine:
                await self.chat.remove_comment(bid, comment_id)  # off every screen
            if mine:
                await self.chat.forget_comments(bid, mine)
            removed += mine
            pinned = await self.chat.pinned(bid)
            if pinned is not None and _author_id(pinned) == viewer_id:
                await self.chat.set_pinned(bid, None)
            for item in await self.chat.list_held(bid):
                if _author_id(item) == viewer_id and await self.chat.reject_held(bid, item["held_id"]):
                    held_dropped += 1
        archive_rows = await self.store.erase_viewer_comments(viewer_id)
        scrubbed = await self.store.scrub_audit_text(viewer_id)
        for bid in broadcasts:
            await self.audit.record(bid, actor, "erase_viewer", viewer_id=viewer_id,
                                    detail={"removed": len(removed)})
        return {"viewer_id": viewer_id, "broadcasts": broadcasts, "removed_comments": removed,
                "held_dropped": held_dropped, "archived_erased": archive_rows, "audit_scrubbed": scrubbed}
