"""``onair_simulcast_*`` series, in the node's registry.

Node-wide: targets by status, transitions by status, queue drops.  Per target (labels ``broadcast``,
``target``, shown only to the admin token or on ``--metrics-listen``): bytes sent, queue drops.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from broadcaster.metrics import BROADCAST_LABEL
from broadcaster.simulcast.targets import TargetStatus


class SimulcastMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.targets = Gauge("onair_simulcast_targets", "Simulcast targets of broadcasts live on this node, by status",
                             ["status"], registry=registry)
        self.transitions = Counter("onair_simulcast_transitions", "Simulcast target status changes, by new status",
                                   ["status"], registry=registry)
        self.drops = Counter("onair_simulcast_queue_drops",
                             "Times a target fell behind by more than its bound and skipped to the next keyframe",
                             registry=registry)
        self.sent = Counter("onair_simulcast_sent_bytes", "Bytes sent to a simulcast target",
                            [BROADCAST_LABEL, "target"], registry=registry)
        self.target_drops = Counter("onair_simulcast_target_queue_drops",
                                    "Times a target fell behind and skipped to the next keyframe, per target",
                                    [BROADCAST_LABEL, "target"], registry=registry)
        for status in TargetStatus:
            self.targets.labels(status.value).set(0)

    def transition(self, status: TargetStatus) -> None:
        self.transitions.labels(status.value).inc()

    def count(self, broadcast_id: str, target_id: str, sent: int, drops: int) -> None:
        self.sent.labels(broadcast_id, target_id).inc(max(0, sent))
        if drops > 0:
            self.drops.inc(drops)
            self.target_drops.labels(broadcast_id, target_id).inc(drops)

    def statuses(self, counts: dict[TargetStatus, int]) -> None:
        for status, count in counts.items():
            self.targets.labels(status.value).set(count)

    def forget(self, broadcast_id: str) -> None:
        for counter in (self.sent, self.target_drops):
            for labels in [k for k in list(counter._metrics) if k[0] == broadcast_id]:  # noqa: SLF001
                counter.remove(*labels)
