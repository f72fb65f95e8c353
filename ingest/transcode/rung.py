"""One transcoded rung of the ladder in its own thread: scale with swscale, encode with libx264, mux.

The worker's main thread decodes the source once and hands each rung its
frames through a bounded queue (a slow rung slows the demuxer, and so the
pipe, instead of growing); an IDR is forced where the source has a keyframe,
so every rendition cuts at the same media time.  PyAV releases the GIL in
scale and encode, so the rungs really run in parallel.  A libav error on one
frame or packet drops it (:mod:`ingest.transcode.guard`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
from av.stream import Stream
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from ingest.transcode.cmaf import CmafWriter
from ingest.transcode.events import PacketDropped
from ingest.transcode.guard import PacketGuard
from ingest.transcode.ladder import Rendition, h264_level
from ingest.transcode.segmenter import SegmentWriter

log = logging.getLogger("ingest.transcode.worker")

_MS = Fraction(1, 1000)
_RUNG_QUEUE = 8  # frames; bounds memory and makes a slow rung slow the demuxer (and so the pipe)


class Rung(threading.Thread):
    """One transcoded rendition: scale + encode + segment, in its own thread."""

    def __init__(self, rendition: Rendition, width: int, height: int, fps: Fraction,
                 make_writer: Callable[[Callable[[Any], Any]], SegmentWriter | CmafWriter],
                 report: Callable[[PacketDropped], None]) -> None:
        super().__init__(name=f"rung-{rendition.name}", daemon=True)
        self._encode_guard = PacketGuard(rendition.name, "encode", report, to_keyframe=False)
        self._mux_guard = PacketGuard(rendition.name, "mux", report, to_keyframe=True)
        self.rendition = rendition
        self.width = width
        self.height = height
        self.queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=_RUNG_QUEUE)
        self.error: BaseException | None = None
        self._cuts: set[int] = set()
        bitrate = rendition.video_bitrate or 1_000_000
        self.level = h264_level(width, height, float(fps), int(bitrate * 1.2))
        enc = av.CodecContext.create("libx264", "w")
        enc.width = width
        enc.height = height
        enc.pix_fmt = "yuv420p"
        enc.time_base = _MS
        enc.framerate = fps
        enc.bit_rate = bitrate
        # Keyframes come from the source (forced IDRs); keyint is only a safety net.
        enc.gop_size = max(1, int(fps * 10))
        enc.options = {
            "preset": rendition.preset,
            "profile": "high",
            "level": f"{self.level // 10}.{self.level % 10}",
            "forced-idr": "1",
            "maxrate": str(int(bitrate * 1.2)),
            "bufsize": str(int(bitrate * 2)),
            "x264-params": "scenecut=0",
        }
        enc.thread_count = 0  # x264 picks its own threads; it runs outside the GIL
        self.encoder = enc
        self.reformatter = VideoReformatter()
        self.codecs = f"avc1.6400{self.level:02x}"
        self.writer = make_writer(lambda c: c.add_mux_stream("h264", width=width, height=height, time_base=_MS))

    def submit(self, item: tuple[str, Any] | None) -> None:
        """Blocking put that notices a dead rung instead of waiting forever."""
        while True:
            if self.error is not None:
                raise RuntimeError(f"rendition {self.rendition.name} failed: {self.error}")
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def run(self) -> None:
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    for packet in self.encoder.encode(None):
                        self._packet(packet)
                    self.writer.close()
                    return
                kind, value = item
                if kind == "audio":
                    assert isinstance(self.writer, SegmentWriter)
                    self.writer.audio(value)
                    continue
                frame, force_idr, cut = value
                # Our own reformatter: frame.reformat() caches one SwsContext on the shared source
                # frame, and two rungs using it at once deadlock inside swscale.
                scaled = self.reformatter.reformat(frame, width=self.width, height=self.height, format="yuv420p",
                                                   interpolation="BICUBIC")
                scaled.pts = frame.pts
                scaled.time_base = _MS
                if force_idr:
                    scaled.pict_type = PictureType.I
                if cut:
                    self._cuts.add(frame.pts)
                packets: list[av.Packet[Stream]] = []
                self._encode_guard.run(lambda: packets.extend(self.encoder.encode(scaled)))
                for packet in packets:
                    self._packet(packet)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            log.exception("rendition %s failed", self.rendition.name)
            self.error = exc
            self.writer.abort()

    def _packet(self, packet: av.Packet[Stream]) -> None:
        packet.time_base = _MS
        cut = packet.pts in self._cuts
        if cut:
            self._cuts.discard(packet.pts)
            if not packet.is_keyframe:
                log.warning("rendition %s: no IDR at cut pts %s", self.rendition.name, packet.pts)
        self._mux_guard.run(lambda: self.writer.video(packet, cut), packet.is_keyframe)
