"""HLS playlist text (RFC 8216 and 8216bis' Low-Latency HLS), pure: no I/O, no clocks.

A :class:`MediaPlaylist` keeps every segment of a rendition; while live it
renders a sliding window of the last ``window`` segments, once ended it renders
the full list as VOD with ``#EXT-X-ENDLIST`` (the replay).  ``render_master``
writes the multivariant playlist.  ``MediaPlaylist.parse`` reads back what
``render`` wrote so a restarted node continues a broadcast's numbering.

Low-latency playlists (``part_target`` set) also carry the parts of the last
few segments and of the segment being built (``#EXT-X-PART``), a preload hint
for the next part, ``#EXT-X-SERVER-CONTROL`` (blocking reload) and
``#EXT-X-PART-INF``; renditions of one master report each other's edge with
``#EXT-X-RENDITION-REPORT``.  Once ended, parts and server control are
dropped: the replay is a plain VOD playlist.  A client without LL-HLS support
ignores the part tags and plays the segments.

Media sequence numbers are implicit (first segment's number + index), so a
playlist assigns them itself; segment URIs are ``<seq>.ts`` by default.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass

VERSION = 3  # floating-point EXTINF
LL_VERSION = 6  # EXT-X-MAP in a playlist that is not I-frames only
#: segments (counted back from the live edge) whose parts stay listed: RFC 8216bis asks
#: for the parts of at least the last three target durations
PARTS_KEPT = 3


@dataclass(frozen=True)
class Part:
    duration: float
    uri: str
    independent: bool = False


@dataclass(frozen=True)
class Segment:
    seq: int
    duration: float
    uri: str
    discontinuity: bool = False
    #: the init section (``#EXT-X-MAP``) of fMP4 segments
    map_uri: str | None = None
    parts: tuple[Part, ...] = ()
    #: epoch seconds of the segment's first sample (``#EXT-X-PROGRAM-DATE-TIME``)
    program_date_time: float | None = None


@dataclass(frozen=True)
class RenditionReport:
    uri: str
    last_msn: int
    last_part: int | None


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


class MediaPlaylist:
    def __init__(self, target_duration: float = 2.0, window: int = 6, start_seq: int = 0, discontinuity_sequence: int = 0,
                 part_target: float | None = None) -> None:
        if window < 1:
            raise ValueError("live window must hold at least 1 segment")
        if part_target is not None and not 0 < part_target <= target_duration:
            raise ValueError(f"part target must be positive and at most the target duration, got {part_target!r}")
        self.window = window
        self.segments: list[Segment] = []
        self.ended = False
        self.part_target = part_target
        #: the init section new segments use (fMP4)
        self.map_uri: str | None = None
        #: parts of the segment being built (low latency)
        self.parts: list[Part] = []
        self._first_seq = start_seq
        self._base_discontinuity_sequence = discontinuity_sequence
        self._target = max(1, math.ceil(target_duration - 1e-6))
        self._pending_discontinuity = False
        self._parts_discontinuity = False

    @property
    def low_latency(self) -> bool:
        return self.part_target is not None

    @property
    def part_hold_back(self) -> float:
        """Where a low-latency client plays behind the edge: three part targets (RFC 8216bis' advice)."""
        assert self.part_target is not None
        return 3 * self.part_target

    @property
    def last_msn(self) -> int:
        """The MSN of the last complete segment (-1 while there is none)."""
        return self.next_seq - 1

    @property
    def last_part(self) -> tuple[int, int] | None:
        """(msn, index) of the newest part listed, None if no part was ever listed."""
        if self.parts:
            return self.next_seq, len(self.parts) - 1
        if self.segments and self.segments[-1].parts:
            return self.segments[-1].seq, len(self.segments[-1].parts) - 1
        return None

    @property
    def next_seq(self) -> int:
        return self._first_seq + len(self.segments)

    @property
    def target_duration(self) -> int:
        # Never shrinks: a segment longer than the target (a long source GOP) raises it.
        return self._target

    def mark_discontinuity(self) -> None:
        """The next segment follows a timestamp/encoder break (``#EXT-X-DISCONTINUITY``)."""
        if self.segments:
            self._pending_discontinuity = True

    def add_part(self, duration: float, uri: str, independent: bool) -> Part:
        """A part of the segment being built (the next MSN) is complete."""
        if self.ended:
            raise ValueError("playlist has ended")
        if not self.low_latency:
            raise ValueError("parts need a low-latency playlist (part_target)")
        if not (duration > 0 and math.isfinite(duration)):
            raise ValueError(f"part duration must be positive, got {duration!r}")
        if not self.parts:
            self._parts_discontinuity = self._pending_discontinuity
        part = Part(duration, uri, independent)
        self.parts.append(part)
        return part

    def add(self, duration: float, uri: str | None = None, program_date_time: float | None = None) -> Segment:
        """A segment is complete; in a low-latency playlist it takes the parts listed so far."""
        if self.ended:
            raise ValueError("playlist has ended")
        if not (duration > 0 and math.isfinite(duration)):
            raise ValueError(f"segment duration must be positive, got {duration!r}")
        seq = self.next_seq
        segment = Segment(seq, duration, uri if uri is not None else f"{seq}.ts", self._pending_discontinuity,
                          self.map_uri, tuple(self.parts), program_date_time)
        self._pending_discontinuity = False
        self.parts = []
        self.segments.append(segment)
        self._target = max(self._target, _round_half_up(duration))
        return segment

    def drop_parts(self) -> None:
        """Forget the parts of an unfinished segment (its worker died before completing it)."""
        self.parts = []

    def end(self) -> None:
        self.ended = True

    def visible(self) -> tuple[list[Segment], int]:
        """The segments rendered now and the discontinuity sequence of the first one."""
        if self.ended:
            return list(self.segments), self._base_discontinuity_sequence
        start = max(0, len(self.segments) - self.window)
        hidden = sum(1 for segment in self.segments[:start] if segment.discontinuity)
        return self.segments[start:], self._base_discontinuity_sequence + hidden

    def render(self, hint_uri: str | None = None, reports: Sequence[RenditionReport] = ()) -> str:
        """The playlist text; ``hint_uri`` names the next part (preload hint), ``reports`` the sibling renditions."""
        shown, discontinuity_sequence = self.visible()
        media_sequence = shown[0].seq if shown else self.next_seq
        live_ll = self.low_latency and not self.ended
        uses_map = any(segment.map_uri for segment in shown) or (live_ll and self.map_uri is not None)
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{LL_VERSION if uses_map else VERSION}",
            f"#EXT-X-TARGETDURATION:{self.target_duration}",
        ]
        if live_ll:
            assert self.part_target is not None
            lines.append(f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={self.part_hold_back:.3f}")
            lines.append(f"#EXT-X-PART-INF:PART-TARGET={self.part_target:.3f}")
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}")
        if discontinuity_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
        if self.ended:
            lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
        current_map: str | None = None
        parts_from = len(shown) - PARTS_KEPT
        for index, segment in enumerate(shown):
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if segment.map_uri is not None and segment.map_uri != current_map:
                lines.append(f'#EXT-X-MAP:URI="{segment.map_uri}"')
                current_map = segment.map_uri
            if segment.program_date_time is not None:
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso_date(segment.program_date_time)}")
            if live_ll and index >= parts_from:
                lines.extend(_part_line(part) for part in segment.parts)
            lines.append(f"#EXTINF:{segment.duration:.3f},")
            lines.append(segment.uri)
        if live_ll:
            if self.parts:
                if self._parts_discontinuity:
                    lines.append("#EXT-X-DISCONTINUITY")
                if self.map_uri is not None and self.map_uri != current_map:
                    lines.append(f'#EXT-X-MAP:URI="{self.map_uri}"')
                lines.extend(_part_line(part) for part in self.parts)
            if hint_uri is not None:
                lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{hint_uri}"')
            for report in reports:
                attributes = [f'URI="{report.uri}"', f"LAST-MSN={report.last_msn}"]
                if report.last_part is not None:
                    attributes.append(f"LAST-PART={report.last_part}")
                lines.append("#EXT-X-RENDITION-REPORT:" + ",".join(attributes))
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str, window: int = 6) -> MediaPlaylist:
        """Read back a playlist written by :meth:`render` (full or windowed)."""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines or lines[0] != "#EXTM3U":
            raise ValueError("not an HLS playlist: missing #EXTM3U")
        target = 1
        media_sequence = 0
        discontinuity_sequence = 0
        ended = False
        entries: list[tuple[float, str, bool, str | None]] = []
        duration: float | None = None
        discontinuity = False
        map_uri: str | None = None
        for number, line in enumerate(lines[1:], start=2):
            try:
                if line.startswith("#EXT-X-TARGETDURATION:"):
                    target = int(line.split(":", 1)[1])
                elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                    media_sequence = int(line.split(":", 1)[1])
                elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
                    discontinuity_sequence = int(line.split(":", 1)[1])
                elif line == "#EXT-X-DISCONTINUITY":
                    discontinuity = True
                elif line.startswith("#EXTINF:"):
                    duration = float(line.split(":", 1)[1].split(",", 1)[0])
                elif line == "#EXT-X-ENDLIST":
                    ended = True
                elif line.startswith("#EXT-X-MAP:"):
                    map_uri = _quoted_attribute(line, "URI")
                elif line.startswith("#"):
                    continue
                else:
                    if duration is None:
                        raise ValueError("URI without #EXTINF")
                    entries.append((duration, line, discontinuity, map_uri))
                    duration = None
                    discontinuity = False
            except ValueError as exc:
                raise ValueError(f"bad playlist line {number}: {exc}") from None
        playlist = cls(target, window, media_sequence, discontinuity_sequence)
        for seg_duration, uri, seg_discontinuity, seg_map in entries:
            if seg_discontinuity:
                playlist._pending_discontinuity = True
            playlist.map_uri = seg_map
            playlist.add(seg_duration, uri)
        if ended:
            playlist.end()
        return playlist


def _iso_date(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _part_line(part: Part) -> str:
    independent = ",INDEPENDENT=YES" if part.independent else ""
    return f'#EXT-X-PART:DURATION={part.duration:.3f},URI="{part.uri}"{independent}'


def _quoted_attribute(line: str, name: str) -> str:
    marker = f'{name}="'
    start = line.find(marker)
    if start < 0:
        raise ValueError(f"missing {name} attribute")
    end = line.find('"', start + len(marker))
    if end < 0:
        raise ValueError(f"unterminated {name} attribute")
    return line[start + len(marker):end]


@dataclass(frozen=True)
class Variant:
    uri: str
    bandwidth: int
    codecs: str
    width: int
    height: int
    average_bandwidth: int | None = None
    frame_rate: float | None = None


@dataclass(frozen=True)
class AudioRendition:
    """The one audio rendition every variant shares (``#EXT-X-MEDIA:TYPE=AUDIO``)."""

    uri: str
    group_id: str = "audio"
    name: str = "default"
    channels: int | None = None


def render_master(variants: Sequence[Variant], audio: AudioRendition | None = None) -> str:
    """The multivariant playlist; with ``audio``, every variant refers to that audio group.

    A variant's BANDWIDTH and CODECS must then already include the audio's.
    """
    if not variants:
        raise ValueError("a master playlist needs at least one variant")
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{LL_VERSION if audio else VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None:
        attributes = ["TYPE=AUDIO", f'GROUP-ID="{audio.group_id}"', f'NAME="{audio.name}"', "DEFAULT=YES",
                      "AUTOSELECT=YES"]
        if audio.channels:
            attributes.append(f'CHANNELS="{audio.channels}"')
        attributes.append(f'URI="{audio.uri}"')
        lines.append("#EXT-X-MEDIA:" + ",".join(attributes))
    for variant in variants:
        attributes = [f"BANDWIDTH={variant.bandwidth}"]
        if variant.average_bandwidth is not None:
            attributes.append(f"AVERAGE-BANDWIDTH={variant.average_bandwidth}")
        attributes.append(f"RESOLUTION={variant.width}x{variant.height}")
        attributes.append(f'CODECS="{variant.codecs}"')
        if variant.frame_rate is not None:
            attributes.append(f"FRAME-RATE={variant.frame_rate:.3f}")
        if audio is not None:
            attributes.append(f'AUDIO="{audio.group_id}"')
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attributes))
        lines.append(variant.uri)
    return "\n".join(lines) + "\n"
