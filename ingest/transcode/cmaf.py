"""Writing one LL-HLS rendition track as CMAF: an init section, parts, segments (runs in the worker).

A :class:`CmafWriter` owns one single-track mp4 muxer (libavformat's ``mp4``
with ``cmaf+empty_moov+default_base_moof``) writing into memory.  The muxer
cuts a fragment (``moof`` + ``mdat``) when ``frag_duration`` has passed and,
for video, at every keyframe; each fragment is one LL-HLS *part*.  The muxer
writes a fragment out when the first packet of the next one arrives, so the
writer knows, right after ``mux(packet)``, that the bytes it got are the part
that ended just before ``packet``.  A *segment* is the run of parts between two
cut points (video: the cut flag on a keyframe, decided once on source
keyframes so every rendition cuts at the same media time; audio: the part
boundary nearest a video cut, see :meth:`_audio_cut`).

Files, under the rendition's directory: ``init<N>.mp4`` (one per worker
generation, ``N`` its first segment number), ``s<msn>.p<i>.m4s`` (parts) and
``s<msn>.m4s`` (the whole segment: its parts concatenated).  Each is written
under a temporary name and renamed, so the origin never serves a partial file.

Timestamps come in as milliseconds (the FLV clock), shifted by
:data:`~ingest.transcode.segmenter.TS_OFFSET_MS`; video is muxed on an exact
frame-rate clock (:mod:`ingest.transcode.frameclock`: a frame on the frame grid
is a whole number of ticks), audio on a sample clock kept continuous (AAC
frames are 1024 samples, which milliseconds cannot express exactly).
"""

from __future__ import annotations

import io
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer
from av.stream import Stream

from ingest.hls.fmp4 import BoxSplitter
from ingest.hls.store import init_uri, part_uri, segment_uri, write_atomic
from ingest.transcode.frameclock import FrameClock
from ingest.transcode.segmenter import TS_OFFSET_MS, AudioPacket

log = logging.getLogger("ingest.transcode.cmaf")

_MS = Fraction(1, 1000)
_AAC_FRAME = 1024


@dataclass(frozen=True)
class PartWritten:
    seq: int
    index: int
    duration: float  # seconds
    independent: bool
    size: int
    uri: str
    #: the newest source timestamp (ms) the part holds: how the node finds when it arrived
    last_pts: int


@dataclass(frozen=True)
class SegmentWritten:
    seq: int
    duration: float
    size: int
    uri: str
    parts: int
    first_pts: int


class _Sink(io.RawIOBase):
    """The muxer's output: collects what it writes until the writer takes it."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.pending.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self.pending)
        self.pending.clear()
        return data


@dataclass
class _Sample:
    dts: int  # on the track's clock
    source_pts: int  # ms, as received
    keyframe: bool
    cut: bool


class CmafWriter:
    """One track (video or audio) of one rendition."""

    def __init__(
        self,
        out_dir: Path,
        start_seq: int,
        *,
        kind: str,
        add_stream: Callable[[av.container.OutputContainer], Any],
        part_target: float,
        frame_duration_ms: float,
        on_init: Callable[[str], None],
        on_part: Callable[[PartWritten], None],
        on_segment: Callable[[SegmentWritten], None],
        sample_rate: int = 0,
        segment_target: float = 2.0,
        frame_rate: Fraction | None = None,
    ) -> None:
        if kind not in ("video", "audio"):
            raise ValueError(f"kind must be 'video' or 'audio', not {kind!r}")
        self.out_dir = out_dir
        self.kind = kind
        self.seq = start_seq
        self.init_uri = init_uri(start_seq)
        self._on_init = on_init
        self._on_part = on_part
        self._on_segment = on_segment
        self._frame_ms = frame_duration_ms
        self._part_target = part_target
        self._segment_target = segment_target
        self._muxed = False
        self._sample_rate = sample_rate
        self._frames = FrameClock(frame_rate if kind == "video" else None)
        self._clock = Fraction(1, sample_rate) if kind == "audio" else self._frames.time_base
        # A part holds as many whole frames as fit in the target; the muxer cuts once a
        # fragment spans half a frame less than that, so timestamp jitter never makes a
        # part one frame longer than PART-TARGET.
        frame_us = (_AAC_FRAME / sample_rate * 1e6) if kind == "audio" else frame_duration_ms * 1000
        frames = max(1, math.floor(part_target * 1e6 / frame_us + 1e-6))
        frag_us = max(int((frames - 0.5) * frame_us), 1)
        flags = "cmaf+empty_moov+default_base_moof+skip_trailer+frag_discont" + ("+frag_keyframe" if kind == "video" else "")
        self._sink = _Sink()
        self._container: OutputContainer | None = av.open(
            self._sink, "w", format="mp4",
            options={"movflags": flags, "frag_duration": str(frag_us), "flush_packets": "1"})
        self._stream = add_stream(self._container)
        self._stream.time_base = self._clock
        self._splitter = BoxSplitter()
        self._init: list[bytes] = []
        self._init_written = False
        self._fragment: list[bytes] = []
        self._part_samples: list[_Sample] = []
        self._part_index = 0
        self._segment_tmp: Path | None = None
        self._segment_file: Any = None
        self._segment_size = 0
        self._segment_start_dts: int | None = None
        self._segment_first_pts = 0
        self._cuts: deque[int] = deque()  # audio: video cut times (ms) still to follow
        self._next_audio_pts: int | None = None
        self._segment_max = 0.0
        out_dir.mkdir(parents=True, exist_ok=True)

    # --- input -----------------------------------------------------------

    def video(self, packet: av.Packet[Stream], cut: bool) -> None:
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None:  # the rung's encoder always stamps its packets
            raise ValueError("a video packet with neither pts nor dts")
        dts = packet.dts if packet.dts is not None else pts
        if self._segment_start_dts is None and not cut:
            return  # nothing before the first cut point
        dts_ticks, pts_ticks = self._frames.convert(dts, pts)
        offset = round(TS_OFFSET_MS * self._frames.timescale / 1000)
        packet.pts = pts_ticks + offset
        packet.dts = dts_ticks + offset
        packet.time_base = self._clock
        sample = _Sample(packet.dts, pts, packet.is_keyframe, cut)
        if cut and not packet.is_keyframe:
            log.warning("%s: cut at %d ms is not a keyframe; the segment continues", self.out_dir.name, pts)
            sample.cut = False
        self._mux(packet, sample)

    def note_cut(self, pts_ms: int) -> None:
        """Audio: a video segment starts at this time; start an audio segment at the next part boundary."""
        self._cuts.append(pts_ms)

    def audio(self, item: AudioPacket) -> None:
        if self._segment_start_dts is None and (not self._cuts or item.pts + self._frame_ms < self._cuts[0]):
            return  # audio starts with the first video cut, like the video renditions
        expected = self._next_audio_pts
        actual = round(item.pts * self._sample_rate / 1000)
        # Keep the sample clock continuous unless the source jumped (a gap or overlap of half a frame).
        pts = expected if expected is not None and abs(actual - expected) < _AAC_FRAME // 2 else actual
        self._next_audio_pts = pts + _AAC_FRAME
        offset = TS_OFFSET_MS * self._sample_rate // 1000
        packet = av.Packet(item.data)
        packet.pts = packet.dts = pts + offset
        packet.duration = _AAC_FRAME
        packet.time_base = self._clock
        cut = self._segment_start_dts is None
        sample = _Sample(packet.dts, item.pts, True, cut)
        self._mux(packet, sample)

    def close(self) -> None:
        """End of stream: the muxer writes the last fragment; close the last part and segment."""
        container, self._container = self._container, None
        if container is None:
            return
        if not self._muxed:
            self._container = container
            self.abort()
            return
        container.close()
        self._collect(None)
        if self._part_samples:
            # the last fragment came out of close(): its duration ends one frame after its last sample
            last = self._part_samples[-1]
            frame = _AAC_FRAME if self.kind == "audio" else (self._frames.frame_ticks or self._frame_ms)
            self._finish_part(last.dts + frame)
        self._close_segment()

    def abort(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - best effort on the error path
                pass
        if self._segment_file is not None:
            self._segment_file.close()
            self._segment_file = None
        if self._segment_tmp is not None:
            self._segment_tmp.unlink(missing_ok=True)

    # --- muxing ----------------------------------------------------------

    def _mux(self, packet: av.Packet[Stream], sample: _Sample) -> None:
        assert self._container is not None
        packet.stream = self._stream
        self._container.mux(packet)
        self._muxed = True
        self._collect(sample)

    def _collect(self, starting: _Sample | None) -> None:
        """Take what the muxer wrote during the last call; ``starting`` is the packet just muxed."""
        fragment_done = False
        for kind, box in self._splitter.feed(self._sink.take()):
            if kind in (b"ftyp", b"moov"):
                self._init.append(box)
            elif kind in (b"moof", b"styp", b"prft"):
                self._write_init()
                self._fragment.append(box)
            elif kind == b"mdat":
                self._fragment.append(box)
                fragment_done = True
            # sidx/mfra/free: not part of a live part
        if fragment_done and starting is not None:
            self._finish_part(starting.dts)
        if starting is None:
            return
        if not self._part_samples:
            # ``starting`` opens a new part; at a cut it opens a new segment too
            if starting.cut or self._segment_start_dts is None or (self.kind == "audio" and self._audio_cut(starting)):
                self._close_segment()
                self._open_segment(starting)
        self._part_samples.append(starting)

    def _audio_cut(self, starting: _Sample) -> bool:
        """Does the audio part beginning with ``starting`` begin a segment too?

        Audio parts cannot be cut at an exact time, so an audio segment starts at
        the part boundary nearest the video's cut.  The video cut is usually known
        by then; when the audio is demuxed ahead of it, a segment that has reached
        the segment target (less half a part) ends anyway, as the video's is about
        to, and the video cut that follows within half a part counts as this one.
        """
        half = self._part_target * 500
        while self._cuts and self._cuts[0] <= self._segment_first_pts + half:
            self._cuts.popleft()  # the current segment's own cut
        if self._cuts and self._cuts[0] <= starting.source_pts + half:
            return True
        return starting.source_pts - self._segment_first_pts >= self._segment_target * 1000 - half

    def _write_init(self) -> None:
        if self._init_written or not self._init:
            return
        write_atomic(self.out_dir / self.init_uri, b"".join(self._init))
        self._init_written = True
        self._on_init(self.init_uri)

    def _finish_part(self, end_dts: float) -> None:
        """The fragment just written is the part made of ``_part_samples``; it ends at ``end_dts``."""
        data = b"".join(self._fragment)
        self._fragment.clear()
        samples, self._part_samples = self._part_samples, []
        if not samples or self._segment_file is None:
            return
        scale = float(self._clock)
        duration = max(end_dts - samples[0].dts, 1) * scale
        uri = part_uri(self.seq, self._part_index)
        write_atomic(self.out_dir / uri, data)
        self._segment_file.write(data)
        self._segment_size += len(data)
        part = PartWritten(self.seq, self._part_index, round(duration, 4), samples[0].keyframe, len(data), uri,
                           max(s.source_pts for s in samples))
        self._part_index += 1
        self._segment_max = end_dts
        self._on_part(part)

    def _open_segment(self, first: _Sample) -> None:
        self._segment_tmp = self.out_dir / f".{segment_uri(self.seq)}.tmp"
        self._segment_file = open(self._segment_tmp, "wb")
        self._segment_size = 0
        self._segment_start_dts = first.dts
        self._segment_first_pts = first.source_pts
        self._segment_max = first.dts
        self._part_index = 0

    def _close_segment(self) -> None:
        if self._segment_file is None or self._segment_tmp is None:
            return
        self._segment_file.close()
        self._segment_file = None
        parts = self._part_index
        if parts == 0:
            self._segment_tmp.unlink(missing_ok=True)
            self._segment_tmp = None
            return
        uri = segment_uri(self.seq)
        self._segment_tmp.replace(self.out_dir / uri)
        self._segment_tmp = None
        assert self._segment_start_dts is not None
        duration = max(self._segment_max - self._segment_start_dts, 1) * float(self._clock)
        segment = SegmentWritten(self.seq, round(duration, 4), self._segment_size, uri, parts, self._segment_first_pts)
        self.seq += 1
        self._on_segment(segment)
