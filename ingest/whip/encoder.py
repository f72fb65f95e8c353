"""Decoded WebRTC frames -> the node's H.264 + AAC :class:`~ingest.media.MediaUnit` s, in a worker thread.

The node's pipeline takes H.264 (AVCC + AVCDecoderConfigurationRecord) and AAC
(raw frames + AudioSpecificConfig) only, while browsers send VP8 or H.264 and
Opus.  v1 re-encodes what aiortc decoded: libx264 (``zerolatency``, an IDR
every ``keyframe_interval`` of media time, so HLS segments can be cut on the
segment target) and FFmpeg's AAC encoder at 48 kHz stereo.

PyAV releases the GIL while it encodes, so the worker thread runs beside the
event loop.  The thread is fed by a bounded queue; a full queue drops the
newest frame (counted) instead of growing memory.  ``stop()`` sends a sentinel,
the thread flushes both encoders and ends; ``join()`` waits for it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
from av.stream import Stream

from ingest.media import MediaKind, MediaUnit
from ingest.whip.h264 import access_unit_to_avcc, config_from_extradata

log = logging.getLogger("onair.whip.encoder")

MS = Fraction(1, 1000)
AUDIO_RATE = 48000
AAC_FRAME = 1024
#: a jump of input audio time beyond this re-anchors the audio timeline (network gap)
AUDIO_RESYNC_MS = 200


@dataclass(frozen=True)
class EncoderOptions:
    keyframe_interval_ms: int = 2000
    preset: str = "veryfast"
    #: output never larger than this (aspect kept); browsers may send 1080p or more
    max_width: int = 1920
    max_height: int = 1080
    #: H.264 bits per pixel per frame at ~30 fps, for the bitrate of the rung the node passes through
    bits_per_pixel: float = 0.1
    audio_bitrate: int = 128_000
    queue_size: int = 64


@dataclass
class EncoderStats:
    video_in: int = 0
    audio_in: int = 0
    video_dropped: int = 0
    audio_dropped: int = 0
    video_out: int = 0
    audio_out: int = 0
    errors: int = 0


def _even(value: int) -> int:
    return max(2, value - value % 2)


def output_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """Even dimensions no larger than the bounds, aspect kept."""
    scale = min(1.0, max_width / width, max_height / height)
    return _even(int(width * scale)), _even(int(height * scale))


class _VideoEncoder:
    def __init__(self, options: EncoderOptions, emit: Callable[[MediaUnit], None]) -> None:
        self._options = options
        self._emit = emit
        self._codec: av.VideoCodecContext | None = None
        self._size = (0, 0)
        self._last_pts = -1
        self._last_key = -(10 ** 9)

    def _open(self, frame: av.VideoFrame, ms: int) -> None:
        width, height = output_size(frame.width, frame.height, self._options.max_width, self._options.max_height)
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.time_base = MS
        codec.bit_rate = max(300_000, int(width * height * 30 * self._options.bits_per_pixel))
        # Keyframes are forced on media time below (frame rates from browsers vary); x264's own
        # keyint is only a backstop.
        codec.gop_size = 600
        codec.options = {"preset": self._options.preset, "tune": "zerolatency", "forced-idr": "1"}
        codec.flags |= av.codec.context.Flags.global_header
        codec.open()
        self._codec, self._size = codec, (width, height)
        self._emit(MediaUnit(MediaKind.VIDEO, "h264", ms, 0, True, True, config_from_extradata(_extradata(codec))))

    def encode(self, frame: av.VideoFrame, ms: int) -> None:
        if self._codec is None:
            self._open(frame, ms)
        assert self._codec is not None
        # Browsers change resolution under congestion; the output keeps its first size.
        if (frame.width, frame.height) != self._size or frame.format.name != "yuv420p":
            frame = frame.reformat(width=self._size[0], height=self._size[1], format="yuv420p")
        pts = max(ms, self._last_pts + 1)  # x264 needs strictly increasing pts
        self._last_pts = pts
        frame.pts, frame.time_base = pts, MS
        if pts - self._last_key >= self._options.keyframe_interval_ms:
            frame.pict_type = av.video.frame.PictureType.I
            self._last_key = pts
        else:
            frame.pict_type = av.video.frame.PictureType.NONE
        self._write(self._codec.encode(frame))

    def flush(self) -> None:
        if self._codec is not None:
            self._write(self._codec.encode(None))

    def _write(self, packets: list[av.Packet[Stream]]) -> None:
        for packet in packets:
            if packet.pts is None or packet.dts is None:
                continue
            self._emit(MediaUnit(MediaKind.VIDEO, "h264", int(packet.dts), int(packet.pts - packet.dts),
                                 bool(packet.is_keyframe), False, access_unit_to_avcc(bytes(packet))))


class _AudioEncoder:
    def __init__(self, options: EncoderOptions, emit: Callable[[MediaUnit], None]) -> None:
        self._options = options
        self._emit = emit
        self._codec: av.AudioCodecContext | None = None
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        self._fifo = av.AudioFifo()
        #: timeline position (in samples) of the next sample written to the fifo
        self._next_in: int | None = None
        #: timeline position of the fifo's first sample
        self._fifo_start = 0
        self._last_out = -AAC_FRAME

    def open(self, ms: int) -> None:
        codec = av.CodecContext.create("aac", "w")
        codec.sample_rate = AUDIO_RATE
        codec.layout = "stereo"
        codec.format = "fltp"
        codec.bit_rate = self._options.audio_bitrate
        codec.time_base = Fraction(1, AUDIO_RATE)
        codec.flags |= av.codec.context.Flags.global_header
        codec.open()
        self._codec = codec
        self._emit(MediaUnit(MediaKind.AUDIO, "aac", ms, 0, True, True, _extradata(codec)))

    def encode(self, frame: av.AudioFrame, ms: int) -> None:
        if self._codec is None:
            self.open(ms)
        assert self._codec is not None
        position = ms * AUDIO_RATE // 1000
        if self._next_in is None or abs(position - self._next_in) > AUDIO_RESYNC_MS * AUDIO_RATE // 1000:
            # A gap (or the first frame): start a new run of samples at the frame's own time.
            # Whatever is left in the fifo (< one AAC frame) is dropped.
            if self._fifo.samples:
                self._fifo.read(self._fifo.samples)
            self._fifo_start = max(position, self._last_out + AAC_FRAME)
            self._next_in = self._fifo_start
        frame.pts = None
        for resampled in self._resampler.resample(frame):
            self._fifo.write(resampled)
            self._next_in += resampled.samples
        while self._fifo.samples >= AAC_FRAME:
            chunk = self._fifo.read(AAC_FRAME)
            if chunk is None:  # (the fifo holds a whole frame: never)
                break
            chunk.pts, chunk.time_base = self._fifo_start, Fraction(1, AUDIO_RATE)
            self._last_out = self._fifo_start
            self._fifo_start += AAC_FRAME
            self._write(self._codec.encode(chunk))

    def flush(self) -> None:
        if self._codec is not None:
            self._write(self._codec.encode(None))

    def _write(self, packets: list[av.Packet[Stream]]) -> None:
        assert self._codec is not None
        for packet in packets:
            if packet.pts is None:
                continue
            # FFmpeg shifts AAC packets back by the encoder delay (priming); the node's clock
            # starts at 0, so the delay is put back instead of producing negative times.
            samples = int(packet.pts) + AAC_FRAME
            ms = samples * 1000 // AUDIO_RATE
            self._emit(MediaUnit(MediaKind.AUDIO, "aac", ms, 0, True, False, bytes(packet)))


class MediaEncoder:
    """Owns the worker thread; ``put_*`` never block (a full queue drops the frame)."""

    def __init__(self, emit: Callable[[MediaUnit], None], options: EncoderOptions | None = None,
                 name: str = "whip-encoder", audio: bool = True) -> None:
        self.options = options or EncoderOptions()
        self._audio = audio
        self.stats = EncoderStats()
        self._emit = emit
        self._queue: queue.Queue[tuple[MediaKind, av.frame.Frame, int] | None] = queue.Queue(self.options.queue_size)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stopped = False

    def start(self) -> None:
        self._thread.start()

    def put_video(self, frame: av.VideoFrame, ms: int) -> bool:
        self.stats.video_in += 1
        if not self._put((MediaKind.VIDEO, frame, ms)):
            self.stats.video_dropped += 1
            return False
        return True

    def put_audio(self, frame: av.AudioFrame, ms: int) -> bool:
        self.stats.audio_in += 1
        if not self._put((MediaKind.AUDIO, frame, ms)):
            self.stats.audio_dropped += 1
            return False
        return True

    def _put(self, item: tuple[MediaKind, av.frame.Frame, int]) -> bool:
        if self._stopped:
            return False
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            return False

    def stop(self) -> None:
        """Ask the thread to flush and end (idempotent, never blocks)."""
        if self._stopped:
            return
        self._stopped = True
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except queue.Full:
                # make room for the sentinel: the oldest frame is lost, the run is ending anyway
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        video = _VideoEncoder(self.options, self._count_and_emit)
        audio = _AudioEncoder(self.options, self._count_and_emit)
        if self._audio:
            # The AudioSpecificConfig goes out before anything else: the node starts its output
            # when the video configuration arrives and takes audio only if it knows it by then.
            audio.open(0)
        while True:
            item = self._queue.get()
            if item is None:
                break
            kind, frame, ms = item
            try:
                if kind is MediaKind.VIDEO:
                    video.encode(frame, ms)  # type: ignore[arg-type]
                else:
                    audio.encode(frame, ms)  # type: ignore[arg-type]
            except (av.FFmpegError, ValueError) as exc:
                # one bad frame must not end the publish; it is counted and logged
                self.stats.errors += 1
                if self.stats.errors <= 5 or self.stats.errors % 100 == 0:
                    log.warning("encoding a %s frame failed (%d so far): %s", kind.value, self.stats.errors, exc)
        for encoder in (video, audio):
            try:
                encoder.flush()
            except (av.FFmpegError, ValueError) as exc:
                log.warning("flushing the encoder failed: %s", exc)

    def _count_and_emit(self, unit: MediaUnit) -> None:
        if not unit.config:
            if unit.kind is MediaKind.VIDEO:
                self.stats.video_out += 1
            else:
                self.stats.audio_out += 1
        self._emit(unit)


def _extradata(codec: av.CodecContext) -> bytes:
    """The opened encoder's global header (its codec configuration)."""
    if codec.extradata is None:  # (set by open() with the global_header flag)
        raise RuntimeError(f"the {codec.name} encoder gave no global header")
    return bytes(codec.extradata)
