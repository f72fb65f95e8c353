"""Screening incoming comments with the pipeline, per-broadcast settings from the store.

``SettingsCache`` keeps each broadcast's ``ModerationSettings`` for at most
``ttl`` seconds (1 s by default), so a change made on any node applies on
every node within a second at the cost of one store read per broadcast per
second; a change made on this node applies at once (``invalidate``).

``CommentScreen.screen`` checks the limits every node must agree on (slow
mode, rate, duplicates: ``shared_limits.py``, in the shared store when there
is one), runs the pipeline, archives the comment for the viewer's right of
access and records non-trivial verdicts in the audit log.
A plain publish only queues its archive record (written behind, in batches);
other verdicts are archived and audited before ``screen`` returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from .audit import AuditLog
from .context import CommentContext
from .errors import SettingsError
from .filters.terms import prepare_terms
from .pipeline import ModerationPipeline
from .settings import ModerationSettings
from .shared_limits import NodeLocal, SharedLimits
from .store import ArchivedComment, ModerationStore
from .verdict import Action, Verdict

__all__ = ["CommentScreen", "SettingsCache"]

log = logging.getLogger("onair.moderation.screening")

_DEFAULT = ModerationSettings()


class SettingsCache:
    """Per-broadcast settings read through from the store, kept ``ttl`` seconds (bounded LRU)."""

    def __init__(self, store: ModerationStore, ttl: float = 1.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._max = max_entries
        self._cache: OrderedDict[str, tuple[ModerationSettings, float]] = OrderedDict()

    async def get(self, broadcast_id: str) -> ModerationSettings:
        now = self.clock()
        hit = self._cache.get(broadcast_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        doc = await self.store.get_settings(broadcast_id)
        settings = _DEFAULT
        if doc is not None:
            try:
                settings = ModerationSettings.from_dict(doc)
            except SettingsError as exc:
                # stored by an older version?  Moderate with defaults rather than not at all.
                log.error("stored moderation settings of %s are invalid (%s); using defaults", broadcast_id, exc)
        if hit is None or hit[0] != settings:
            # new terms: build their automata in a thread, not on the event loop in the pipeline
            await asyncio.to_thread(prepare_terms, settings)
        self._cache[broadcast_id] = (settings, now + self.ttl)
        self._cache.move_to_end(broadcast_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return settings

    def peek(self, broadcast_id: str) -> ModerationSettings:
        """The cached settings (defaults if none): the pipeline's synchronous provider."""
        hit = self._cache.get(broadcast_id)
        return hit[0] if hit is not None else _DEFAULT

    def invalidate(self, broadcast_id: str) -> None:
        self._cache.pop(broadcast_id, None)


class CommentScreen:
    """The moderation step of one node: verdict + archive + audit for each comment."""

    def __init__(self, store: ModerationStore, cache: SettingsCache, audit: AuditLog,
                 pipeline: ModerationPipeline | None = None, shared: SharedLimits | None = None) -> None:
        self.store = store
        self.cache = cache
        self.audit = audit
        self.shared = shared or NodeLocal()
        # Bans and timeouts are enforced by the chat's shared state before this step runs.
        self.pipeline = pipeline or ModerationPipeline(cache.peek)

    async def screen(self, broadcast_id: str, viewer_id: str, text: str) -> Verdict:
        settings = await self.cache.get(broadcast_id)  # fresh within the TTL before the pipeline reads it
        ctx = CommentContext.create(broadcast_id, viewer_id, text)
        refused = await self.shared.check(ctx, settings)
        if refused is not None:
            name, finding = refused
            verdict = Verdict(finding.action, text, name, finding.reason)
        else:
            verdict = self.pipeline.moderate(ctx)
        shown = verdict.text if verdict.action is Action.PUBLISH_CENSORED else None
        archived = ArchivedComment(viewer_id, broadcast_id, time.time(), text, verdict.action.value, shown,
                                   verdict.filter, verdict.reason)
        if verdict.action is Action.PUBLISH:
            # The common case: archived in the store's next batch, off the comment's way
            # to the screen (export and erasure write the queue before they read).
            await self.store.queue_archive(archived)
        else:
            # A verdict the author is told about is stored, and audited, before the answer.
            await self.store.archive_comment(archived)
            await self.audit.verdict(broadcast_id, viewer_id, text, verdict)
        return verdict
