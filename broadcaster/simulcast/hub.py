"""The node's simulcast: a :class:`BroadcastForwarding` per live broadcast, one :class:`Forwarder` per
enabled target, and the figures and status changes they produce.

:class:`SimulcastHub` is the :class:`ingest.source.MediaTaps` the live manager
opens when a broadcast gets a session on this node and closes when it ends.  Its
one task (owned by the app's cleanup context) rolls the figures once a second and
re-reads the targets of every live broadcast every ``reload_interval`` seconds
(a target added on another node of a cluster starts here within that time; on
this node the API applies a change at once).

Status changes go to every subscriber (:meth:`SimulcastHub.subscribe`): that is
the hook webhooks (``simulcast.failed``) attach to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from broadcaster.simulcast.forwarder import Forwarder, ForwarderOptions, StatusChange
from broadcaster.simulcast.metrics import SimulcastMetrics
from broadcaster.simulcast.store import TargetStore
from broadcaster.simulcast.targets import Target, TargetStatus
from ingest.media import MediaKind, MediaUnit

log = logging.getLogger("onair.simulcast")

StatusListener = Callable[[StatusChange], None]


class RecentGop:
    """The units since the broadcast's last video keyframe (bounded), so a target that connects starts at
    once from that keyframe instead of waiting up to a GOP for the next one."""

    def __init__(self, max_ms: int = 4000, max_bytes: int = 8 * 1024 * 1024) -> None:
        self._units: list[MediaUnit] = []
        self._bytes = 0
        self._max_ms = max_ms
        self._max_bytes = max_bytes

    def add(self, unit: MediaUnit) -> None:
        if unit.kind is MediaKind.VIDEO and unit.keyframe:
            self._units = [unit]
            self._bytes = len(unit.data)
            return
        if not self._units:
            return
        self._units.append(unit)
        self._bytes += len(unit.data)
        if self._bytes > self._max_bytes or unit.dts - self._units[0].dts > self._max_ms:
            self.clear()  # a long GOP: new targets wait for the next keyframe

    def clear(self) -> None:
        self._units = []
        self._bytes = 0

    def units(self) -> list[MediaUnit]:
        return list(self._units)


class BroadcastForwarding:
    """The targets of one broadcast live on this node (implements :class:`ingest.source.MediaTap`)."""

    def __init__(self, hub: "SimulcastHub", broadcast_id: str) -> None:
        self._hub = hub
        self.broadcast_id = broadcast_id
        self.forwarders: dict[str, Forwarder] = {}
        self._fanout: tuple[Forwarder, ...] = ()
        self._configs: dict[MediaKind, MediaUnit] = {}
        # shorter than a target's lag bound, so starting from it never counts as falling behind
        self._gop = RecentGop(max_ms=hub.options.max_lag_ms * 4 // 5, max_bytes=hub.options.max_bytes // 2)
        self._lock = asyncio.Lock()
        self.closed = False

    # -- MediaTap: called by the ingest for every unit; never waits ----------

    def feed(self, unit: MediaUnit) -> None:
        if unit.config:
            self._configs[unit.kind] = unit
        else:
            self._gop.add(unit)
        for forwarder in self._fanout:
            forwarder.feed(unit)

    def discontinuity(self) -> None:
        self._gop.clear()
        for forwarder in self._fanout:
            forwarder.discontinuity()

    async def close(self) -> None:
        """The broadcast ended here: every target ends cleanly (deleteStream), at once."""
        async with self._lock:
            self.closed = True
            forwarders = list(self.forwarders.values())
            self.forwarders.clear()
            self._fanout = ()
        await asyncio.gather(*(f.stop() for f in forwarders), return_exceptions=True)
        self._hub._forget(self)

    # -- targets -------------------------------------------------------------

    async def apply(self, targets: list[Target]) -> None:
        """Run a forwarder for each enabled target, none for the others."""
        async with self._lock:
            if self.closed:
                return
            wanted = {t.id: t for t in targets if t.enabled}
            stopping = [f for tid, f in self.forwarders.items() if tid not in wanted or f.target != wanted[tid]]
            for forwarder in stopping:
                del self.forwarders[forwarder.target.id]
            for target_id, target in wanted.items():
                if target_id not in self.forwarders:
                    forwarder = Forwarder(target, self._hub.options, self._hub._status_changed, self._gop.units)
                    forwarder.queue.configs.update(self._configs)
                    self.forwarders[target_id] = forwarder
                    forwarder.start()
            self._fanout = tuple(self.forwarders.values())
        await asyncio.gather(*(f.stop() for f in stopping), return_exceptions=True)


class SimulcastHub:
    def __init__(self, store: TargetStore, options: ForwarderOptions, metrics: SimulcastMetrics,
                 reload_interval: float = 5.0) -> None:
        self.store = store
        self.options = options
        self.metrics = metrics
        self.reload_interval = reload_interval
        self._live: dict[str, BroadcastForwarding] = {}
        self._listeners: list[StatusListener] = []
        self._pending: set[str] = set()
        self._kick = asyncio.Event()
        self._figures: dict[tuple[str, str], tuple[int, int, float]] = {}  # bytes, drops, time
        self.bitrates: dict[tuple[str, str], float] = {}

    # -- MediaTaps ------------------------------------------------------------

    def open(self, broadcast_id: str) -> BroadcastForwarding:
        forwarding = self._live.get(broadcast_id)
        if forwarding is None or forwarding.closed:
            forwarding = self._live[broadcast_id] = BroadcastForwarding(self, broadcast_id)
        self._pending.add(broadcast_id)  # the hub's task loads its targets now
        self._kick.set()
        return forwarding

    def _forget(self, forwarding: BroadcastForwarding) -> None:
        if self._live.get(forwarding.broadcast_id) is forwarding:
            del self._live[forwarding.broadcast_id]
        for key in [k for k in self._figures if k[0] == forwarding.broadcast_id]:
            self._figures.pop(key, None)
            self.bitrates.pop(key, None)
        self.metrics.forget(forwarding.broadcast_id)

    # -- API side --------------------------------------------------------------

    async def refresh(self, broadcast_id: str) -> None:
        """Apply the stored targets of ``broadcast_id`` now, if it is live here."""
        forwarding = self._live.get(broadcast_id)
        if forwarding is not None:
            await forwarding.apply(await self.store.list(broadcast_id))

    def runtime(self, broadcast_id: str, target_id: str) -> dict[str, object]:
        """What a target is doing on this node (idle if its broadcast is not live here)."""
        forwarding = self._live.get(broadcast_id)
        forwarder = forwarding.forwarders.get(target_id) if forwarding is not None else None
        if forwarder is None:
            return {"status": TargetStatus.IDLE.value, "bytes_sent": 0, "bitrate": 0, "last_error": None}
        doc = forwarder.snapshot()
        doc["bitrate"] = int(self.bitrates.get((broadcast_id, target_id), 0.0))
        return doc

    def subscribe(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener`` on every target status change (from the event loop; it must not block).
        Returns the function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _status_changed(self, change: StatusChange) -> None:
        self.metrics.transition(change.status)
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("simulcast status listener failed")

    # -- the hub's task -----------------------------------------------------------

    async def run(self) -> None:
        last_reload = time.monotonic()
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._kick.wait(), 1.0)
            self._kick.clear()
            now = time.monotonic()
            due = set(self._pending)
            self._pending.clear()
            if now - last_reload >= self.reload_interval:
                due |= set(self._live)
                last_reload = now
            for broadcast_id in due:
                try:
                    await self.refresh(broadcast_id)
                except Exception as exc:  # Redis down: keep what runs, try again later
                    log.warning("simulcast targets of %s could not be loaded: %s", broadcast_id, exc)
                    self._pending.add(broadcast_id)
            self._roll(now)

    def _roll(self, now: float) -> None:
        counts = dict.fromkeys(TargetStatus, 0)
        for forwarding in list(self._live.values()):
            for forwarder in list(forwarding.forwarders.values()):
                key = (forwarding.broadcast_id, forwarder.target.id)
                counts[forwarder.status] += 1
                sent, drops = forwarder.bytes_sent, forwarder.queue.drops
                prev_sent, prev_drops, prev_time = self._figures.get(key, (0, 0, now))
                if now > prev_time:
                    self.bitrates[key] = (sent - prev_sent) * 8 / (now - prev_time)
                self.metrics.count(key[0], key[1], sent - prev_sent, drops - prev_drops)
                self._figures[key] = (sent, drops, now)
        self.metrics.statuses(counts)

    async def close(self) -> None:
        for forwarding in list(self._live.values()):
            await forwarding.close()
