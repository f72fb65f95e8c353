"""The ban record: who banned or timed out a viewer of a broadcast, why, until when.

Kept once, in the chat's shared state (``broadcaster.bus``: the same record the
chat checks on every join and every post); moderation writes it through
``moderation.actions.ChatControl`` and reads it back for the ban list, the
exports and the playback gate.  Stores from before this kept a second copy
(the node moves those over at start: ``ModerationStore.legacy_bans``, then ``drop_legacy_bans``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["BanRecord"]


@dataclass(frozen=True, slots=True)
class BanRecord:
    broadcast_id: str
    viewer_id: str
    #: epoch seconds the timeout ends; None: banned until unbanned
    until: float | None
    actor: str
    reason: str | None
    ts: float
    #: the chat's key for the viewer's network address when the ban covers it too (a keyed
    #: hash, never the address); never shown
    address_key: str | None = None

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    @property
    def kind(self) -> str:
        """"ban" (until unbanned) or "timeout" (until ``until``)."""
        return "ban" if self.until is None else "timeout"

    def seconds_left(self, now: float) -> int:
        """Whole seconds a timeout still runs (at least 1; 0 for a ban: no end)."""
        return 0 if self.until is None else max(1, math.ceil(self.until - now))

    def with_address(self, address_key: str | None) -> BanRecord:
        return replace(self, address_key=address_key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Any) -> BanRecord:
        """From ``to_dict``'s form; ``ValueError`` for anything else (a damaged record)."""
        if not isinstance(doc, dict):
            raise ValueError("a ban record is a JSON object")
        try:
            record = cls(**doc)
        except TypeError as exc:
            raise ValueError(f"not a ban record: {exc}") from None
        if not (isinstance(record.broadcast_id, str) and isinstance(record.viewer_id, str)
                and isinstance(record.actor, str) and isinstance(record.ts, (int, float))
                and (record.until is None or isinstance(record.until, (int, float)))
                and (record.reason is None or isinstance(record.reason, str))
                and (record.address_key is None or isinstance(record.address_key, str))):
            raise ValueError("a ban record field has the wrong type")
        return record

    def public(self) -> dict[str, Any]:
        """What hosts and exports see: whether the address is banned, not its key."""
        doc = self.to_dict()
        doc["address"] = doc.pop("address_key") is not None
        return doc
