"""Per-packet error isolation in the transcode worker.

A libav error on one packet (a muxer refusing a timestamp, an encoder choking
on a frame) must cost that packet, not the broadcast.  A :class:`PacketGuard`
wraps every call that hands one packet or frame to one writer or encoder: on an
:class:`av.error.FFmpegError` the packet is dropped, reported as a
:class:`~ingest.transcode.events.PacketDropped`, and for video the packets up to
the next keyframe are dropped too (they would refer to the lost one).  Only
``limit`` failures in a row (the writer is broken, not the packet) end the
worker, which the node then restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import av

from ingest.transcode.events import PacketDropped

log = logging.getLogger("ingest.transcode.guard")

#: consecutive failures of one writer after which the worker gives up (and is restarted)
FAILURE_LIMIT = 50


class PacketGuard:
    def __init__(self, rendition: str, stage: str, report: Callable[[PacketDropped], None], *,
                 to_keyframe: bool, limit: int = FAILURE_LIMIT) -> None:
        self.rendition = rendition
        self.stage = stage
        self._report = report
        self._to_keyframe = to_keyframe
        self._limit = limit
        self._failures = 0
        self._skipping = False
        self.dropped = 0

    def run(self, action: Callable[[], object], keyframe: bool = True) -> bool:
        """Run ``action`` for one packet; False if the packet was dropped."""
        if self._skipping:
            if not keyframe:
                self.dropped += 1
                return False
            self._skipping = False
        try:
            action()
        except av.error.FFmpegError as exc:
            self._failures += 1
            self.dropped += 1
            if self._failures >= self._limit:
                raise RuntimeError(f"{self.rendition}: {self._failures} packets in a row failed to {self.stage} "
                                   f"(last: {exc})") from None
            self._skipping = self._to_keyframe
            log.warning("%s: %s failed, packet dropped%s: %s", self.rendition, self.stage,
                        " up to the next keyframe" if self._to_keyframe else "", exc)
            self._report(PacketDropped(self.rendition, self.stage, str(exc)))
            return False
        self._failures = 0
        return True
