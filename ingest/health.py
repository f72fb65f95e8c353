"""One broadcast's media health: what was repaired, dropped or crashed, counted and logged once.

The repair stage (:mod:`ingest.repair`) and the transcode worker's
``packet_dropped`` events (:mod:`ingest.transcode.events`) say what went wrong
with one unit or packet; a :class:`MediaHealth` per broadcast tallies them by
kind for the API (``live.transcoder``), logs the first of each kind once per
broadcast (a stream that needs a repair usually needs it on every frame), and
forwards every count to the node's counters (``/metrics``, labelled by kind
only), through the small :class:`MediaCounters` protocol.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Protocol

from ingest.repair.kinds import Repair
from ingest.transcode.events import PacketDropped

log = logging.getLogger("ingest.health")


class MediaCounters(Protocol):
    """Node-wide counters (the node's metrics implement this)."""

    def media_repaired(self, kind: str) -> None: ...

    def packet_dropped(self, stage: str) -> None: ...

    def worker_failed(self) -> None: ...


class MediaHealth:
    def __init__(self, broadcast_id: str, counters: MediaCounters | None = None) -> None:
        self.broadcast_id = broadcast_id
        self.counters = counters
        self.repairs: Counter[str] = Counter()
        self.packets_dropped: Counter[str] = Counter()
        self.worker_failures = 0
        self._logged: set[str] = set()

    def repaired(self, repairs: list[Repair]) -> None:
        for repair in repairs:
            kind = repair.kind.value
            self.repairs[kind] += 1
            if kind not in self._logged:
                self._logged.add(kind)
                log.warning("broadcast %s: media repair %s (logged once per broadcast, counted in "
                            "onair_media_repairs_total): %s", self.broadcast_id, kind, repair.detail)
            if self.counters is not None:
                self.counters.media_repaired(kind)

    def packet_dropped(self, event: PacketDropped) -> None:
        self.packets_dropped[event.stage] += 1
        key = f"dropped:{event.rendition}:{event.stage}"
        if key not in self._logged:
            self._logged.add(key)
            log.warning("broadcast %s: transcode worker dropped a packet (%s, %s; logged once per broadcast, "
                        "counted in onair_transcoder_packet_errors_total): %s", self.broadcast_id, event.rendition,
                        event.stage, event.message)
        if self.counters is not None:
            self.counters.packet_dropped(event.stage)

    def worker_failed(self) -> None:
        self.worker_failures += 1
        if self.counters is not None:
            self.counters.worker_failed()
