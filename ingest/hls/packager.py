"""The playlists of one broadcast: what the transcode worker reports, turned into HLS.

The worker writes the media (segments, parts, init segments); the packager,
in the node, owns every playlist: the master once the worker reports its
renditions (``Started``), each media playlist rewritten on every segment (a
sliding window while live, the full list + ``#EXT-X-ENDLIST`` once ended, kept
as the replay).  In low latency each media playlist is rewritten on every part
too (LL-HLS tags, preload hint, rendition reports), and its new position is
published to a :class:`~ingest.hls.watch.PlaylistWatch` so the origin can
answer blocked playlist requests the moment it is written.  Every completed
segment is recorded (``segments.jsonl``) before the playlist lists it.  A node
restart continues the numbering of the playlists a previous run left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.hls.clock import PaceClock
from ingest.hls.playlist import AudioRendition, MediaPlaylist, RenditionReport, Variant, render_master
from ingest.hls.store import HlsStore, part_uri
from ingest.hls.watch import PlaylistPosition, PlaylistWatch
from ingest.transcode.config import WorkerConfig
from ingest.transcode.events import Init, Part, Segment, Started
from ingest.transcode.ladder import Rendition, transcoded

log = logging.getLogger("ingest.pipeline")

AUDIO = "audio"


@dataclass
class RenditionState:
    rendition: Rendition
    playlist: MediaPlaylist
    width: int = 0
    height: int = 0
    codecs: str = ""
    frame_rate: float | None = None
    estimate: int | None = None
    bytes: int = 0
    seconds: float = 0.0
    peak: int = 0
    channels: int = 0  # audio rendition: the master's CHANNELS


class HlsPackager:
    def __init__(self, broadcast_id: str, out_dir: Path, clock: PaceClock, *, ladder: list[Rendition],
                 segment_target: float, live_window: int, low_latency: bool, part_target: float,
                 watch: PlaylistWatch | None = None) -> None:
        self.broadcast_id = broadcast_id
        self.out_dir = Path(out_dir)
        self.store = HlsStore(self.out_dir)
        self.clock = clock
        self.ladder = ladder
        self.segment_target = segment_target
        self.live_window = live_window
        self.low_latency = low_latency
        self.part_target = part_target
        self._watch = watch
        self.on_segment: Callable[[str, int, float], None] | None = None
        self.segments_written = 0
        self._audio: RenditionState | None = None
        self._renditions: dict[str, RenditionState] = {}
        self._pinned: list[Rendition] | None = None
        self._master_written: dict[str, int] = {}
        self._loaded: dict[str, MediaPlaylist] = {}
        self._ended = False

    @property
    def renditions(self) -> list[str]:
        return list(self._renditions)

    @property
    def ended(self) -> bool:
        return self._ended

    def worker_config(self) -> str:
        """The next worker's configuration (:class:`~ingest.transcode.config.WorkerConfig`, as JSON): the renditions
        pinned by the first worker, each numbering continued."""
        renditions = self._pinned if self._pinned is not None else self.ladder
        start_seq = {name: state.playlist.next_seq for name, state in self._renditions.items()}
        if self._audio is not None:
            start_seq[AUDIO] = self._audio.playlist.next_seq
        for name, playlist in self._loaded.items():
            start_seq.setdefault(name, playlist.next_seq)
        return WorkerConfig(self.out_dir, list(renditions), self.segment_target, start_seq, self._pinned is not None,
                            self.low_latency, self.part_target).to_json()

    def on_event(self, event: Started | Init | Part | Segment) -> None:
        if isinstance(event, Part):
            self._on_part(event)
        elif isinstance(event, Segment):
            self._on_segment(event)
        elif isinstance(event, Init):
            self._state(event.rendition).playlist.map_uri = event.uri
        else:
            self._on_started(event)

    # --- playlists ---------------------------------------------------------------
    def _new_playlist(self, name: str) -> MediaPlaylist:
        part_target = self.part_target if self.low_latency else None
        playlist = self._loaded.pop(name, None)
        if playlist is None:
            return MediaPlaylist(self.segment_target, self.live_window, part_target=part_target)
        playlist.window = self.live_window
        playlist.ended = False
        playlist.part_target = part_target
        playlist.mark_discontinuity()  # a previous run of this broadcast
        return playlist

    def _state(self, name: str) -> RenditionState:
        state = self._audio if name == AUDIO and self._audio is not None else self._renditions.get(name)
        if state is None:
            raise ValueError(f"event for unknown rendition {name!r}")
        return state

    def _media_states(self) -> list[tuple[str, RenditionState]]:
        states = list(self._renditions.items())
        if self._audio is not None:
            states.append((AUDIO, self._audio))
        return states

    def _on_started(self, event: Started) -> None:
        by_name = {r.name: r for r in (self._pinned or self.ladder)}
        renditions: list[Rendition] = []
        audio = event.audio
        if audio is not None:
            if self._audio is None:
                self._audio = RenditionState(Rendition(AUDIO, True, None, None), self._new_playlist(AUDIO))
            self._audio.codecs = audio.codecs
            self._audio.estimate = audio.bandwidth
            self._audio.channels = audio.channels
        for info in event.renditions:
            rendition = by_name.get(info.name) or transcoded(info.height)
            renditions.append(rendition)
            state = self._renditions.get(info.name)
            if state is None:
                state = self._renditions[info.name] = RenditionState(rendition, self._new_playlist(info.name))
            state.width = info.width
            state.height = info.height
            state.codecs = info.codecs
            state.frame_rate = info.frame_rate
            state.estimate = info.bandwidth
        if self._pinned is None:
            self._pinned = renditions
            log.info("broadcast %s: renditions %s", self.broadcast_id,
                     ", ".join(f"{s.rendition.name} {s.width}x{s.height}" for s in self._renditions.values()))
        self._write_master()

    def _on_part(self, part: Part) -> None:
        name = part.rendition
        playlist = self._state(name).playlist
        if part.seq != playlist.next_seq or part.index != len(playlist.parts):
            log.warning("broadcast %s: %s part %d.%d arrived, expected %d.%d", self.broadcast_id, name, part.seq,
                        part.index, playlist.next_seq, len(playlist.parts))
        playlist.add_part(part.duration, part.uri, part.independent)
        self._write_media(name, playlist)
        if name != AUDIO:
            self.clock.record_delay(part.last_pts)

    def _write_media(self, name: str, playlist: MediaPlaylist) -> None:
        """Write one media playlist and tell the origin where its live edge now is."""
        hint = None
        reports: list[RenditionReport] = []
        if playlist.low_latency and not playlist.ended:
            hint = part_uri(playlist.next_seq, len(playlist.parts))
            if name != AUDIO:
                for other, state in self._renditions.items():
                    sibling = state.playlist
                    if other != name and (sibling.last_part is not None or sibling.last_msn >= 0):
                        last_msn, last_part = sibling.last_part or (sibling.last_msn, None)
                        reports.append(RenditionReport(f"../{other}/index.m3u8", last_msn, last_part))
        self.store.write_media(name, playlist, hint, reports)
        if self._watch is not None and playlist.part_target is not None:
            last = playlist.last_part or (playlist.last_msn, -1)
            self._watch.publish(self.broadcast_id, name, PlaylistPosition(
                last_msn=playlist.last_msn, part_msn=last[0], last_part=last[1],
                part_target=playlist.part_target,
                target_duration=float(playlist.target_duration), hint_uri=hint, ended=playlist.ended))

    def _on_segment(self, event: Segment) -> None:
        name, seq, duration, size, first_pts = event.rendition, event.seq, event.duration, event.size, event.first_pts
        state = self._state(name)
        playlist = state.playlist
        if seq != playlist.next_seq:
            log.warning("broadcast %s: %s segment %d arrived, expected %d", self.broadcast_id, name, seq, playlist.next_seq)
        segment = playlist.add(duration, event.uri or f"{seq}.ts", self.clock.program_date(first_pts))
        self.store.record_segment(name, segment)  # every segment, for a replay after a node crash
        first = state.seconds == 0
        state.bytes += size
        state.seconds += duration
        state.peak = max(state.peak, int(size * 8 / duration))
        self._write_media(name, playlist)
        if playlist.low_latency and seq >= playlist.window:
            # the segment that just left the live window: no playlist lists its parts any more
            self.store.remove_parts(name, seq - playlist.window)
        if name == AUDIO:
            return
        if not playlist.low_latency and first_pts is not None:
            frame_ms = 1000 / state.frame_rate if state.frame_rate else 0
            self.clock.record_delay(int(first_pts + duration * 1000 - frame_ms))
        self.segments_written += 1
        written = self._master_written.get(name, 0)
        if first or state.peak > written * 1.1:
            self._write_master()
        if self.on_segment is not None:
            try:
                self.on_segment(name, seq, duration)
            except Exception:  # noqa: BLE001 - a metrics hook must not stop packaging
                log.exception("broadcast %s: on_segment hook failed", self.broadcast_id)

    def _bandwidth(self, state: RenditionState) -> tuple[int, int | None]:
        average = int(state.bytes * 8 / state.seconds) if state.seconds else None
        peak = max(state.peak, state.estimate or 0)
        if not peak:
            peak = 2_000_000  # passthrough before its first segment: a placeholder until measured
        return peak, average

    def _write_master(self) -> None:
        variants = []
        audio_bits = 0
        if self._audio is not None:
            audio_bits = int(self._audio.bytes * 8 / self._audio.seconds) if self._audio.seconds else (self._audio.estimate or 0)
        for name, state in self._renditions.items():
            peak, average = self._bandwidth(state)
            self._master_written[name] = peak
            if self._audio is not None:
                # measured video-only figures; the variant plays with the audio rendition
                peak += audio_bits if state.seconds else 0
                average = average + audio_bits if average is not None else None
            variants.append(Variant(f"{name}/index.m3u8", peak, state.codecs, state.width, state.height,
                                    average, state.frame_rate))
        audio = None
        if self._audio is not None:
            audio = AudioRendition(f"{AUDIO}/index.m3u8", channels=self._audio.channels or None)
        if variants:
            self.store.write_master(render_master(variants, audio))

    # --- generations and the end ---------------------------------------------------
    def mark_discontinuity_all(self) -> None:
        """A worker generation ended: the next one's first segments carry ``#EXT-X-DISCONTINUITY``."""
        self.clock.restart()
        for _, state in self._media_states():
            # parts of a segment the dead worker never finished are gone; the next worker
            # writes that segment number again
            state.playlist.drop_parts()
            state.playlist.mark_discontinuity()

    def end_playlists(self) -> None:
        """The broadcast ended: every playlist complete, with ``#EXT-X-ENDLIST`` (the replay)."""
        if self._ended:
            return
        self._ended = True
        # with the renditions of a previous run (node restart) that no worker of this run continued
        playlists = [(name, state.playlist) for name, state in self._media_states()] + list(self._loaded.items())
        for name, playlist in playlists:
            playlist.drop_parts()
            if playlist.segments:
                playlist.end()
                self._write_media(name, playlist)
            # a killed worker leaves its half-written segment behind
            for partial in self.store.rendition_dir(name).glob(".*.tmp"):
                partial.unlink(missing_ok=True)
        self._write_master()
        if self._watch is not None:
            self._watch.forget(self.broadcast_id)

    def load_existing(self) -> None:
        """Playlists a previous run of this broadcast left (node restart): continue their numbering."""
        names = {r.name for r in self.ladder}
        if self.out_dir.is_dir():
            names.update(p.name for p in self.out_dir.iterdir() if p.is_dir())
        for name in sorted(names):
            playlist = self.store.load_media(name, self.live_window, self.segment_target)
            if playlist is not None and playlist.segments:
                self._loaded[name] = playlist
