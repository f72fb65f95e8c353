"""A broadcast's replay HLS made into one MP4 and a poster JPEG, with PyAV: no re-encode.

Blocking (libav work): called in a worker thread (:func:`asyncio.to_thread`), never on the
event loop.  The segment list is the replay's own (:func:`ingest.hls.recovery.load_playlist`:
every segment journalled while live, across publisher reconnects and node restarts), so the
MP4 holds exactly what the replay playlist lists.

A *generation* is a run of segments one transcode worker wrote: one init section (fMP4) and
timestamps that continue.  Each generation is demuxed as one stream (init + its segments
back to back) and its packets are shifted so that its first video frame lands where the
replay playlist places its first segment (the sum of the EXTINF before it); the audio of the
same generation (LL-HLS keeps it in its own ``audio`` rendition; MPEG-TS in every segment)
takes the same shift, so lip sync is the worker's.  The MP4 is written with
``movflags=+faststart`` (index first: playable while it downloads, seekable by range).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ingest.hls.playlist import MediaPlaylist, Segment
from ingest.hls.recovery import load_playlist

log = logging.getLogger("onair.recordings.remux")

AUDIO = "audio"
_STREAM_INF = re.compile(r"#EXT-X-STREAM-INF:(?P<attrs>[^\n]*)\n(?P<uri>[^\n#]+)")
_RESOLUTION = re.compile(r"RESOLUTION=(\d+)x(\d+)")
_BANDWIDTH = re.compile(r"(?<![-A-Z])BANDWIDTH=(\d+)")


class RemuxError(Exception):
    """The replay cannot be made into an MP4 (the message says why)."""


@dataclass(frozen=True)
class Remuxed:
    #: seconds: the replay playlist's duration (sum of the top rendition's EXTINF)
    duration: float
    size: int
    rendition: str
    video_codec: str
    audio_codec: str | None


def top_rendition(hls_dir: Path) -> str:
    """The video rendition with the most pixels (then the most bits) the master lists."""
    try:
        master = (hls_dir / "master.m3u8").read_text(encoding="utf-8")
    except OSError as exc:
        raise RemuxError(f"no master playlist in {hls_dir.name}: {exc.strerror}") from None
    best: tuple[int, int, str] | None = None
    for match in _STREAM_INF.finditer(master):
        attrs, uri = match["attrs"], match["uri"].strip()
        resolution = _RESOLUTION.search(attrs)
        pixels = int(resolution[1]) * int(resolution[2]) if resolution else 0
        bandwidth = _BANDWIDTH.search(attrs)
        rank = (pixels, int(bandwidth[1]) if bandwidth else 0, uri.split("/", 1)[0])
        if best is None or rank[:2] > best[:2]:
            best = rank
    if best is None:
        raise RemuxError(f"the master playlist of {hls_dir.name} lists no rendition")
    return best[2]


def replay_playlist(hls_dir: Path, rendition: str) -> MediaPlaylist:
    playlist = load_playlist(hls_dir / rendition)
    if playlist is None or not playlist.segments:
        raise RemuxError(f"rendition {rendition} of {hls_dir.name} has no segment")
    return playlist


def _generations(segments: list[Segment]) -> list[tuple[float, list[Segment]]]:
    """(playlist position of its first segment, its segments) per worker generation."""
    out: list[tuple[float, list[Segment]]] = []
    position = 0.0
    for segment in segments:
        if not out or segment.discontinuity or segment.map_uri != out[-1][1][-1].map_uri:
            out.append((position, []))
        out[-1][1].append(segment)
        position += segment.duration
    return out


def _matching(generations: list[tuple[float, list[Segment]]], first: Segment, index: int) -> list[Segment] | None:
    """The audio generation a worker wrote with the video generation starting with ``first``: the one
    whose program date-time is nearest (within a second), else the one at the same index."""
    dated = [(abs(segs[0].program_date_time - first.program_date_time), segs) for _, segs in generations
             if segs[0].program_date_time is not None and first.program_date_time is not None]
    if dated:
        gap, segments = min(dated, key=lambda item: item[0])
        if gap <= 1.0:
            return segments
    return generations[index][1] if index < len(generations) else None


def _read_generation(rendition_dir: Path, segments: list[Segment]) -> io.BytesIO:
    chunks: list[bytes] = []
    if segments[0].map_uri:
        chunks.append((rendition_dir / segments[0].map_uri).read_bytes())
    for segment in segments:
        try:
            chunks.append((rendition_dir / segment.uri).read_bytes())
        except FileNotFoundError:
            log.warning("%s: segment %s listed but missing; skipped", rendition_dir, segment.uri)
    return io.BytesIO(b"".join(chunks))


class _Track:
    """One output stream: its packets' timestamps kept increasing across generations."""

    def __init__(self, out: av.container.OutputContainer, template: av.stream.Stream) -> None:
        if template.time_base is None:  # (a demuxed stream always has one)
            raise RemuxError(f"the {template.type} stream has no time base")
        self.stream = out.add_stream_from_template(template)
        self.time_base: Fraction = template.time_base
        self.codec: str = template.codec_context.name
        self.last_dts: int | None = None
        self.end = 0.0  # seconds: end of the last packet muxed

    def mux(self, out: av.container.OutputContainer, packet: av.Packet[Any], shift: float) -> None:
        if packet.dts is None or packet.pts is None:
            return
        offset = round(shift / self.time_base)
        dts, pts = packet.dts + offset, packet.pts + offset
        if self.last_dts is not None and dts <= self.last_dts:
            pts += self.last_dts + 1 - dts
            dts = self.last_dts + 1
        if pts < 0 or dts < 0 and self.last_dts is None:
            return  # before the start of the recording
        packet.dts, packet.pts = dts, pts
        packet.time_base = self.time_base
        packet.stream = self.stream
        self.last_dts = dts
        self.end = max(self.end, float((pts + (packet.duration or 0)) * self.time_base))
        out.mux(packet)


def remux(hls_dir: Path, out_path: Path) -> Remuxed:
    """Write the replay's top rendition (and its audio) to ``out_path`` (via a temporary name)."""
    rendition = top_rendition(hls_dir)
    video_list = replay_playlist(hls_dir, rendition)
    audio_dir = hls_dir / AUDIO
    audio_list = load_playlist(audio_dir) if audio_dir.is_dir() else None
    audio_generations = _generations(audio_list.segments) if audio_list is not None else []
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    video_codec, audio_codec = "", None
    generations = _generations(video_list.segments)
    try:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            # every stream is added before the first packet is muxed (the header is written then)
            video, audio = _tracks(out, hls_dir / rendition, generations, audio_dir, audio_list)
            if video is None:
                raise RemuxError(f"no readable video in rendition {rendition} of {hls_dir.name}")
            video_codec = video.codec
            audio_codec = audio.codec if audio is not None else None
            for index, (position, segments) in enumerate(generations):
                shift = _mux_video(out, video, None if audio_list is not None else audio,
                                   hls_dir / rendition, segments, position)
                # LL-HLS: the same generation's audio, from its own rendition, with the video's shift
                audio_generation = _matching(audio_generations, segments[0], index)
                if shift is not None and audio is not None and audio_generation is not None:
                    _mux_audio(out, audio, audio_dir, audio_generation, shift)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out_path)
    duration = sum(s.duration for s in video_list.segments)
    return Remuxed(duration, out_path.stat().st_size, rendition, video_codec, audio_codec)


def _open(data: io.BytesIO, fmp4: bool, where: str) -> av.container.InputContainer | None:
    try:
        return av.open(data, "r", format="mp4" if fmp4 else "mpegts")
    except av.error.FFmpegError as exc:
        log.warning("%s: a generation cannot be read (%s); skipped", where, exc)
        return None


def _tracks(out: av.container.OutputContainer, video_dir: Path, generations: list[tuple[float, list[Segment]]],
            audio_dir: Path, audio_list: MediaPlaylist | None) -> tuple[_Track | None, _Track | None]:
    """The output's video and audio streams, copied from the first readable generation of each."""
    video = audio = None
    for _, segments in generations:
        source = _open(_read_generation(video_dir, segments), bool(segments[0].map_uri), str(video_dir))
        if source is None:
            continue
        with source:
            if source.streams.video:
                video = _Track(out, source.streams.video[0])
                if audio_list is None and source.streams.audio:
                    audio = _Track(out, source.streams.audio[0])
                break
    if video is not None and audio_list is not None:
        for _, segments in _generations(audio_list.segments):
            source = _open(_read_generation(audio_dir, segments), True, str(audio_dir))
            if source is None:
                continue
            with source:
                if source.streams.audio:
                    audio = _Track(out, source.streams.audio[0])
                    break
    return video, audio


def _mux_video(out: av.container.OutputContainer, video: _Track, audio: _Track | None, video_dir: Path,
               segments: list[Segment], position: float) -> float | None:
    """Mux one generation's video (and, MPEG-TS, its audio); returns the shift applied (seconds)."""
    source = _open(_read_generation(video_dir, segments), bool(segments[0].map_uri), str(video_dir))
    if source is None:
        return None
    with source:
        if not source.streams.video:
            return None
        in_video = source.streams.video[0]
        in_audio = source.streams.audio[0] if audio is not None and source.streams.audio else None
        packets = list(source.demux(*([in_video] + ([in_audio] if in_audio is not None else []))))
        first = next((p.pts for p in packets if p.stream is in_video and p.pts is not None), None)
        if first is None or in_video.time_base is None:
            return None
        # the generation's first frame lands at its playlist position
        shift = position - float(first * in_video.time_base)
        for packet in packets:
            if packet.stream is in_video:
                video.mux(out, packet, shift)
            elif audio is not None:
                audio.mux(out, packet, shift)
    return shift


def _mux_audio(out: av.container.OutputContainer, track: _Track, audio_dir: Path, segments: list[Segment],
               shift: float) -> None:
    source = _open(_read_generation(audio_dir, segments), True, str(audio_dir))
    if source is None:
        return
    with source:
        if source.streams.audio:
            for packet in source.demux(source.streams.audio[0]):
                track.mux(out, packet, shift)


def poster(video_path: Path, out_path: Path, at: float) -> int:
    """Decode the first keyframe at or after ``at`` seconds of ``video_path`` into a JPEG (same size);
    returns its size in bytes."""
    with av.open(str(video_path)) as source:
        stream = source.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        frame = None
        try:
            if stream.time_base is not None:  # (without one: decode from the start)
                source.seek(int(at / stream.time_base), stream=stream, backward=True)
        except av.error.FFmpegError:
            pass
        for candidate in source.decode(stream):
            frame = candidate
            if candidate.time is None or candidate.time >= at - 0.01:
                break
        if frame is None:
            raise RemuxError(f"{video_path.name} has no decodable keyframe")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = frame.width, frame.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qscale": "3"}
    image = frame.reformat(format="yuvj420p")
    image.pts = 0
    data = b"".join(bytes(p) for p in encoder.encode(image)) + b"".join(bytes(p) for p in encoder.encode(None))
    if not data.startswith(b"\xff\xd8"):
        raise RemuxError("the JPEG encoder gave no image")
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(out_path)
    return len(data)


__all__ = ["RemuxError", "Remuxed", "poster", "remux", "replay_playlist", "top_rendition"]
