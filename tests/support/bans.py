"""A ban record as a host's action would make it (``moderation.actions``), for tests that ban directly."""

from __future__ import annotations

import time

from moderation.bans import BanRecord


def ban(broadcast_id: str, viewer_id: str, seconds: float | None = None, address: str | None = None,
        actor: str = "host", reason: str | None = None) -> BanRecord:
    now = time.time()
    return BanRecord(broadcast_id, viewer_id, None if seconds is None else now + seconds, actor, reason, now, address)
