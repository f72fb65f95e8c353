"""Cutting one rendition's packets into MPEG-TS segment files (runs in the worker).

A :class:`SegmentWriter` receives the rendition's video packets in decode
order, each flagged when it starts a new segment (the cut points are decided
once, on source keyframes, so every rendition cuts at the same media time),
plus the shared audio packets.  Each segment is its own small ``mpegts``
container written to ``.<seq>.ts.tmp`` and renamed to ``<seq>.ts`` when
complete, so readers never see a partial segment.

Timestamps are milliseconds (the FLV clock) throughout.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.stream import Stream

_MS = Fraction(1, 1000)
#: Added to every timestamp written, like ffmpeg's 1.4 s mux delay: the encoder's
#: first dts is negative (B-frame reordering), and libavformat would otherwise
#: shift each segment's timestamps on its own, breaking alignment.
TS_OFFSET_MS = 1400


@dataclass
class AudioPacket:
    """A copy of a demuxed AAC packet that any rendition can mux."""

    data: bytes
    pts: int
    dts: int
    duration: int


#: (seq, duration seconds, bytes, first_pts ms)
SegmentCallback = Callable[[int, float, int, int], None]


class SegmentWriter:
    def __init__(
        self,
        out_dir: Path,
        start_seq: int,
        make_video_stream: Callable[[av.container.OutputContainer], Any],
        audio_template: Any | None,
        on_segment: SegmentCallback,
        frame_duration_ms: float,
    ) -> None:
        self.out_dir = out_dir
        self.seq = start_seq
        self._make_video_stream = make_video_stream
        self._audio_template = audio_template
        self._on_segment = on_segment
        self._frame_duration = frame_duration_ms
        self._pending_audio: deque[AudioPacket] = deque()
        self._container: av.container.OutputContainer | None = None
        self._video_stream: Any = None
        self._audio_stream: Any = None
        self._tmp_path: Path | None = None
        self._start_pts = 0
        self._last_video_pts = 0
        out_dir.mkdir(parents=True, exist_ok=True)

    # --- input -----------------------------------------------------------

    def audio(self, packet: AudioPacket) -> None:
        if self._audio_template is not None:
            self._pending_audio.append(packet)

    def video(self, packet: av.Packet[Stream], cut: bool) -> None:
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None:  # the rung's encoder always stamps its packets
            raise ValueError("a video packet with neither pts nor dts")
        dts = packet.dts if packet.dts is not None else pts
        if self._container is None and not cut:
            return  # nothing before the first cut point (the first source keyframe)
        if cut:
            if self._container is not None:
                self._write_audio(lambda a: a.pts < pts)
                self._close_segment(pts)
            self._drop_audio(lambda a: a.pts < pts)
            self._open_segment(pts)
        # Audio up to this packet's dts cannot belong to a later segment:
        # every later video pts in this segment is >= dts.
        self._write_audio(lambda a: a.pts <= dts)
        assert self._container is not None
        packet.pts = pts + TS_OFFSET_MS
        packet.dts = dts + TS_OFFSET_MS
        packet.stream = self._video_stream
        self._container.mux(packet)
        self._last_video_pts = max(self._last_video_pts, pts)

    def close(self) -> None:
        """End of stream: write the final (short) segment."""
        if self._container is None:
            return
        self._write_audio(lambda a: True)
        end = self._last_video_pts + self._frame_duration
        self._close_segment(int(round(end)))

    def abort(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - best effort on the error path
                pass
            self._container = None
        if self._tmp_path is not None:
            self._tmp_path.unlink(missing_ok=True)

    # --- segments --------------------------------------------------------

    def _open_segment(self, pts: int) -> None:
        self._tmp_path = self.out_dir / f".{self.seq}.ts.tmp"
        container = av.open(str(self._tmp_path), "w", format="mpegts")
        self._video_stream = self._make_video_stream(container)
        self._audio_stream = container.add_stream_from_template(self._audio_template) if self._audio_template is not None else None
        self._container = container
        self._start_pts = pts
        self._last_video_pts = pts

    def _close_segment(self, end_pts: int) -> None:
        assert self._container is not None and self._tmp_path is not None
        self._container.close()
        self._container = None
        final = self.out_dir / f"{self.seq}.ts"
        size = self._tmp_path.stat().st_size
        os.replace(self._tmp_path, final)
        self._tmp_path = None
        duration = max(end_pts - self._start_pts, 1) / 1000.0
        seq = self.seq
        self.seq += 1
        self._on_segment(seq, duration, size, self._start_pts)

    def _write_audio(self, keep: Callable[[AudioPacket], bool]) -> None:
        while self._pending_audio and keep(self._pending_audio[0]):
            item = self._pending_audio.popleft()
            if self._container is None or self._audio_stream is None or item.pts < self._start_pts:
                continue
            packet = av.Packet(item.data)
            packet.pts = item.pts + TS_OFFSET_MS
            packet.dts = item.dts + TS_OFFSET_MS
            packet.duration = item.duration
            packet.time_base = _MS
            packet.stream = self._audio_stream
            self._container.mux(packet)

    def _drop_audio(self, drop: Callable[[AudioPacket], bool]) -> None:
        while self._pending_audio and drop(self._pending_audio[0]):
            self._pending_audio.popleft()

