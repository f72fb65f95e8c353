"""The transcode worker process: FLV on stdin -> HLS segments (MPEG-TS, or CMAF parts) per rendition.

Run as ``python -m ingest.transcode.worker '<json config>'`` by
``ingest.pipeline``; never imported into the node's event loop for media work.

Flow: the main thread demuxes the FLV pipe and decides the cut points once, on
source keyframes (a segment ends at the first keyframe at least
``segment_target`` after its start).  The passthrough rendition muxes the
source H.264 packets as they are.  Video is decoded once; each transcoded rung
has its own thread (scale with swscale, encode with libx264, mux) fed by a
bounded queue, an IDR forced on every source keyframe, so every rendition cuts
at the same media time.  PyAV releases the GIL in scale/encode/decode, so the
rungs really run in parallel.  With MPEG-TS output, AAC audio is copied into
every rendition; with low-latency (CMAF) output, video renditions carry video
only and the AAC is written once, as the ``audio`` rendition, every track cut
into parts of ``part_target`` (see :mod:`ingest.transcode.cmaf`).

A libav error on one packet drops that packet (video: up to the next keyframe),
reported as a ``packet_dropped`` event (:mod:`ingest.transcode.guard`); only a
run of failures on one writer ends the worker.  Its input has passed the node's
repair stage (:mod:`ingest.repair`): timestamps increase, keyframes are IDRs.

Reports on stdout, one JSON object per line: ``started``, ``init``, ``part``,
``segment``, ``stats``, ``packet_dropped``, ``error``.  Logs go to stderr.  Exit status 0 after stdin EOF and a
clean flush, 1 on error (after an ``error`` line), 2 on a bad config.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import queue
import signal
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from typing import IO, Any

import av
import av.logging

from ingest.hls import codecs
from ingest.transcode.cmaf import CmafWriter, PartWritten, SegmentWritten
from ingest.transcode.config import ConfigError, WorkerConfig
from ingest.transcode.events import (Events, Init, Part, Segment, Started, StartedAudio,
                                     StartedRendition, Stats, WorkerError)
from ingest.transcode.guard import PacketGuard
from ingest.transcode.ladder import scaled_width, select_for_source
from ingest.transcode.rung import Rung
from ingest.transcode.segmenter import AudioPacket, SegmentWriter

log = logging.getLogger("ingest.transcode.worker")

_MS = Fraction(1, 1000)
_STATS_INTERVAL = 2.0
_MAX_BAD_PACKETS = 50  # consecutive undecodable video packets before giving up
_COMMON_RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
                 Fraction(50), Fraction(60000, 1001), Fraction(60)]
_PROBE_OPTIONS = {"probesize": "65536", "analyzeduration": "1000000"}
#: libavformat's read size on the stdin pipe.  The node writes what it received
#: in one go (about ten times a second); a block larger than one such write
#: takes it in one read instead of several 32 KiB ones.  The read returns what
#: the pipe holds, so a low bitrate is not delayed by the size.
_READ_BLOCK = 256 * 1024


def snap_frame_rate(rate: Fraction | None) -> Fraction:
    if not rate or rate <= 0:
        return Fraction(30)
    # the nearest common rate within 1.5 % (30 must not snap to 29.97 just because it is listed first)
    nearest = min(_COMMON_RATES, key=lambda common: abs(rate - common))
    if abs(rate - nearest) / nearest < Fraction(15, 1000):
        return nearest
    return Fraction(rate).limit_denominator(1001)


class Worker:
    def __init__(self, config: WorkerConfig, events: Events) -> None:
        self.config = config
        self.events = events
        self._frame_rate: Fraction | None = None  # the source's, once known: video tracks' exact clock

    def _writer(self, name: str, audio: Any, frame_ms: float) -> Callable[[Callable[[Any], Any]], SegmentWriter | CmafWriter]:
        """A factory of the writer of rendition ``name``, given how to add its video stream to a container."""
        if self.config.low_latency:
            return lambda add_stream: self._cmaf_writer(name, "video", add_stream, frame_ms)
        out_dir = self.config.out_dir / name
        start_seq = self.config.start_seq.get(name, 0)

        def on_segment(seq: int, duration: float, size: int, first_pts: int) -> None:
            self.events.report(Segment(name, seq, round(duration, 3), size, first_pts=first_pts))

        return lambda add_stream: SegmentWriter(out_dir=out_dir, start_seq=start_seq, make_video_stream=add_stream,
                                                audio_template=audio, on_segment=on_segment, frame_duration_ms=frame_ms)

    def _cmaf_writer(self, name: str, kind: str, add_stream: Callable[[Any], Any], frame_ms: float,
                     sample_rate: int = 0) -> CmafWriter:
        report = self.events.report

        def on_part(part: PartWritten) -> None:
            report(Part(name, part.seq, part.index, part.duration, part.independent, part.size, part.uri,
                        part.last_pts))

        def on_segment(segment: SegmentWritten) -> None:
            report(Segment(name, segment.seq, segment.duration, segment.size, segment.uri, segment.first_pts,
                           segment.parts))

        return CmafWriter(self.config.out_dir / name, self.config.start_seq.get(name, 0), kind=kind,
                          add_stream=add_stream, part_target=self.config.part_target, frame_duration_ms=frame_ms,
                          on_init=lambda uri: report(Init(name, uri)),
                          on_part=on_part, on_segment=on_segment, sample_rate=sample_rate,
                          segment_target=self.config.segment_target,
                          frame_rate=self._frame_rate if kind == "video" else None)

    def run(self, source: IO[bytes]) -> None:
        try:
            container = av.open(source, mode="r", format="flv", options=_PROBE_OPTIONS, buffer_size=_READ_BLOCK)
        except av.error.FFmpegError as exc:
            raise RuntimeError(f"cannot read the FLV input: {exc}") from None
        with container:
            self._run(container)

    def _run(self, container: av.container.InputContainer) -> None:
        if not container.streams.video:
            raise RuntimeError("input has no video stream")
        video = container.streams.video[0]
        src = video.codec_context
        if not src.width or not src.height:
            raise RuntimeError("input video has no decodable size (bad H.264 configuration?)")
        audio = container.streams.audio[0] if container.streams.audio else None
        if audio is not None and audio.codec_context.name != "aac":
            log.warning("input audio is %s, not AAC: renditions carry no audio", audio.codec_context.name)
            audio = None
        # The decoder's own reading first: over a pipe without onMetaData, libavformat's
        # guessed_rate of a 30 fps FLV stream is 60 (field rate), which would mislabel
        # FRAME-RATE and pick too high an H.264 level.
        fps = snap_frame_rate(video.codec_context.framerate or video.average_rate or video.guessed_rate)
        frame_ms = 1000 / float(fps)
        self._frame_rate = fps
        cfg = self.config
        renditions = cfg.renditions if cfg.pinned else select_for_source(cfg.renditions, src.width, src.height, src.name)
        log.info("source %s %dx%d @ %s fps, audio %s; renditions %s", src.name, src.width, src.height, float(fps),
                 audio.codec_context.name if audio else "none", ",".join(r.name for r in renditions))

        audio_codecs = codecs.aac_from_asc(bytes(audio.codec_context.extradata)) if audio and audio.codec_context.extradata else None
        audio_rate = (audio.codec_context.bit_rate or 128_000) if audio else 0
        passthrough: SegmentWriter | CmafWriter | None = None
        rungs: list[Rung] = []
        report: list[StartedRendition] = []
        for rendition in renditions:
            make_writer = self._writer(rendition.name, audio, frame_ms)
            if rendition.passthrough:
                passthrough = make_writer(lambda c: c.add_stream_from_template(video))
                video_codecs = codecs.avc_from_avcc(bytes(src.extradata)) if src.extradata else "avc1.640028"
                report.append(StartedRendition(rendition.name, src.width, src.height,
                                               ",".join(c for c in (video_codecs, audio_codecs) if c),
                                               (src.bit_rate + audio_rate) if src.bit_rate else None,
                                               round(float(fps), 3)))
            else:
                height = rendition.height or src.height
                width = scaled_width(src.width, src.height, height)
                rung = Rung(rendition, width, height, fps, make_writer, self.events.report)
                rungs.append(rung)
                report.append(StartedRendition(rendition.name, width, height,
                                               ",".join(c for c in (rung.codecs, audio_codecs) if c),
                                               int((rendition.video_bitrate or 0) * 1.2) + audio_rate,
                                               round(float(fps), 3)))
        # Low latency: the audio is its own rendition, written once; the variants' figures above
        # still include it (a variant's BANDWIDTH and CODECS cover the audio it plays with).
        audio_writer: CmafWriter | None = None
        started_audio: StartedAudio | None = None
        if cfg.low_latency and audio is not None:
            audio_writer = self._cmaf_writer("audio", "audio", lambda c: c.add_stream_from_template(audio), frame_ms,
                                             sample_rate=audio.codec_context.sample_rate)
            started_audio = StartedAudio(audio_codecs or "mp4a.40.2", audio_rate, audio.codec_context.channels)
        self.events.report(Started(tuple(report), started_audio))

        if rungs:
            src.thread_type = "AUTO"
            src.thread_count = 0
        for rung in rungs:
            rung.start()
        try:
            self._loop(container, video, audio, passthrough, rungs, frame_ms, audio_writer)
        except BaseException:
            for rung in rungs:
                try:
                    rung.queue.put_nowait(None)
                except queue.Full:
                    pass
            for writer in (passthrough, audio_writer):
                if writer is not None:
                    writer.abort()
            raise
        for rung in rungs:
            rung.submit(None)
        for rung in rungs:
            rung.join()
            if rung.error is not None:
                raise RuntimeError(f"rendition {rung.rendition.name} failed: {rung.error}")
        for writer in (passthrough, audio_writer):
            if writer is not None:
                writer.close()

    def _loop(self, container: Any, video: Any, audio: Any, passthrough: SegmentWriter | CmafWriter | None,
              rungs: list[Rung], frame_ms: float, audio_writer: CmafWriter | None) -> None:
        target_ms = self.config.segment_target * 1000 - frame_ms / 2  # a timestamp jitter must not cost a GOP
        report = self.events.report
        video_guard = PacketGuard("source", "mux", report, to_keyframe=True)
        audio_guard = PacketGuard("audio", "mux", report, to_keyframe=False)
        decode_guard = PacketGuard("decoder", "decode", report, to_keyframe=True, limit=_MAX_BAD_PACKETS)
        segment_start: int | None = None
        keyframes: dict[int, bool] = {}  # pts of source keyframes -> starts a segment
        first_pts: int | None = None
        last_pts = 0
        frames = 0
        started = time.monotonic()
        next_stats = started + _STATS_INTERVAL

        def send_frames(decoded: list[Any]) -> None:
            nonlocal frames
            for frame in decoded:
                frames += 1
                pts = frame.pts
                if pts is None:
                    continue
                cut = keyframes.pop(pts, None)
                for rung in rungs:
                    rung.submit(("frame", (frame, cut is not None, bool(cut))))

        for packet in container.demux(video, *([audio] if audio is not None else [])):
            if packet.dts is None:
                continue  # demuxer flush packet
            if packet.stream is video:
                pts = packet.pts if packet.pts is not None else packet.dts
                cut = False
                if packet.is_keyframe:
                    if segment_start is None or pts - segment_start >= target_ms:
                        segment_start = pts
                        cut = True
                        if audio_writer is not None:
                            audio_writer.note_cut(pts)
                    if rungs:
                        keyframes[pts] = cut
                if segment_start is None:
                    continue  # wait for the first keyframe
                if first_pts is None:
                    first_pts = pts
                last_pts = max(last_pts, pts)
                if rungs:
                    decoded: list[Any] = []
                    decode_guard.run(lambda: decoded.extend(video.codec_context.decode(packet)), packet.is_keyframe)
                    send_frames(decoded)
                else:
                    frames += 1
                if passthrough is not None:
                    video_guard.run(lambda: passthrough.video(packet, cut), packet.is_keyframe)
            else:
                if segment_start is None:
                    continue
                item = AudioPacket(bytes(packet), packet.pts, packet.dts, packet.duration or 0)
                if audio_writer is not None:
                    audio_writer_ = audio_writer
                    audio_guard.run(lambda: audio_writer_.audio(item))
                else:
                    if isinstance(passthrough, SegmentWriter):
                        passthrough.audio(item)
                    for rung in rungs:
                        rung.submit(("audio", item))
            now = time.monotonic()
            if now >= next_stats and first_pts is not None:
                next_stats = now + _STATS_INTERVAL
                self._stats(first_pts, last_pts, frame_ms, frames, now - started)
        if rungs:
            try:
                send_frames(list(video.codec_context.decode(None)))
            except av.error.FFmpegError as exc:
                log.warning("decoder flush failed: %s", exc)
        if first_pts is not None:
            self._stats(first_pts, last_pts, frame_ms, frames, time.monotonic() - started)

    def _stats(self, first_pts: int, last_pts: int, frame_ms: float, frames: int, wall: float) -> None:
        media = (last_pts - first_pts + frame_ms) / 1000
        self.events.report(Stats(round(media, 3), round(wall, 3), round(media / wall, 3) if wall > 0 else None,
                                 round(frames / wall, 2) if wall > 0 else None))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # `kill -USR1 <pid>` dumps every thread's stack to stderr: how to see where a stuck worker is.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # Below the node's priority: a node short of cores keeps its event loop (chat, HTTP, ingest) responsive.
    os.nice(int(os.environ.get("ONAIR_WORKER_NICE", "10")))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # libav's own error lines (to stderr, so the node log) and in PyAV's exceptions: "Invalid argument" alone
    # does not say that a muxer refused a decoding time
    av.logging.set_level(av.logging.ERROR)
    events = Events(sys.stdout)
    if len(args) != 1:
        events.report(WorkerError("usage: python -m ingest.transcode.worker '<json config>'"))
        return 2
    try:
        config = WorkerConfig.from_json(args[0])
    except ConfigError as exc:
        log.error("%s", exc)
        events.report(WorkerError(str(exc)))
        return 2
    # Unbuffered fd 0: a read returns what the pipe has instead of waiting for a full buffer,
    # so a low-bitrate stream is not delayed by the reader.
    source = os.fdopen(os.dup(0), "rb", buffering=0)
    try:
        Worker(config, events).run(source)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one error line for the parent
        log.error("worker failed: %s", exc, exc_info=not isinstance(exc, RuntimeError))
        events.report(WorkerError(str(exc)))
        return 1
    finally:
        source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
