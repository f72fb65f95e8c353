"""Prometheus metrics of one node, in a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.live_broadcasts = Gauge("onair_live_broadcasts", "Broadcasts with a publisher connected", registry=self.registry)
        self.ingest_bitrate = Gauge("onair_ingest_bitrate_bps", "Ingest bitrate, bits per second", ["broadcast"], registry=self.registry)
        self.ingest_fps = Gauge("onair_ingest_fps", "Ingest video frames per second", ["broadcast"], registry=self.registry)
        self.transcoder_speed = Gauge("onair_transcoder_realtime_factor", "Media seconds transcoded per wall second", ["broadcast"], registry=self.registry)
        self.segments_written = Counter("onair_segments_written", "HLS segments written", ["broadcast", "rendition"], registry=self.registry)
        self.worker_restarts = Counter("onair_transcoder_restarts", "Transcoder worker restarts after a crash", ["broadcast"], registry=self.registry)
        self.publish_refused = Counter("onair_publish_refused", "Publish attempts refused", ["protocol", "reason"], registry=self.registry)
        self.publishes = Counter("onair_publishes", "Publishes accepted", ["protocol"], registry=self.registry)

    def forget(self, broadcast_id: str) -> None:
        for gauge in (self.ingest_bitrate, self.ingest_fps, self.transcoder_speed):
            try:
                gauge.remove(broadcast_id)
            except KeyError:
                pass

    def render(self) -> bytes:
        return generate_latest(self.registry)
