"""Prometheus metrics of one node, in a registry of its own (one per app).

Some series are per broadcast (a ``broadcast`` label): ``render(per_broadcast=False)`` leaves them
out, so a scrape without the admin token learns no broadcast id (``broadcaster/metrics_http.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import Metric

#: the label that names a broadcast
BROADCAST_LABEL = "broadcast"


class _WithoutLabel:
    """A view of a registry without the samples that carry ``label`` (what ``generate_latest`` reads)."""

    def __init__(self, registry: CollectorRegistry, label: str) -> None:
        self._registry = registry
        self._label = label

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [sample for sample in family.samples if self._label not in sample.labels]
            yield kept


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.live_broadcasts = Gauge("onair_live_broadcasts", "Broadcasts with a publisher connected", registry=self.registry)
        self.ingest_bitrate = Gauge("onair_ingest_bitrate_bps", "Ingest bitrate, bits per second", [BROADCAST_LABEL], registry=self.registry)
        self.ingest_fps = Gauge("onair_ingest_fps", "Ingest video frames per second", [BROADCAST_LABEL], registry=self.registry)
        self.transcoder_speed = Gauge("onair_transcoder_realtime_factor", "Media seconds transcoded per wall second", [BROADCAST_LABEL], registry=self.registry)
        self.segments_written = Counter("onair_segments_written", "HLS segments written", [BROADCAST_LABEL, "rendition"], registry=self.registry)
        self.worker_restarts = Counter("onair_transcoder_restarts", "Transcoder worker restarts after a crash", [BROADCAST_LABEL], registry=self.registry)
        self.publish_refused = Counter("onair_publish_refused", "Publish attempts refused", ["protocol", "reason"], registry=self.registry)
        self.publishes = Counter("onair_publishes", "Publishes accepted", ["protocol"], registry=self.registry)
        # media health, node-wide (per-broadcast figures are in GET /api/broadcasts/<id> live.transcoder)
        self.media_repairs = Counter("onair_media_repairs", "Media units repaired on ingest (ingest/repair), by kind",
                                     ["kind"], registry=self.registry)
        self.packet_errors = Counter("onair_transcoder_packet_errors",
                                     "Packets a transcode worker dropped after a libav error, the broadcast going on",
                                     ["stage"], registry=self.registry)
        self.worker_failures = Counter("onair_transcoder_worker_failures",
                                       "Transcode worker processes that died or were killed as stalled",
                                       registry=self.registry)
        self.hls_forwarded = Counter("onair_hls_forwarded",
                                     "HLS requests for another node's broadcast: streamed through from it (forwarded), "
                                     "or 404 because its node is gone (gone: no heartbeat; unreachable: it refused "
                                     "or dropped the connection)", ["outcome"], registry=self.registry)

    # ingest.health.MediaCounters
    def media_repaired(self, kind: str) -> None:
        self.media_repairs.labels(kind).inc()

    def packet_dropped(self, stage: str) -> None:
        self.packet_errors.labels(stage).inc()

    def worker_failed(self) -> None:
        self.worker_failures.inc()

    def forget(self, broadcast_id: str) -> None:
        for gauge in (self.ingest_bitrate, self.ingest_fps, self.transcoder_speed):
            try:
                gauge.remove(broadcast_id)
            except KeyError:
                pass

    def render(self, per_broadcast: bool = True) -> bytes:
        if per_broadcast:
            return generate_latest(self.registry)
        return generate_latest(_WithoutLabel(self.registry, BROADCAST_LABEL))
