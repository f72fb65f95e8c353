"""HLS playlist text (RFC 8216), pure: no I/O, no clocks.

A :class:`MediaPlaylist` keeps every segment of a rendition; while live it
renders a sliding window of the last ``window`` segments, once ended it renders
the full list as VOD with ``#EXT-X-ENDLIST`` (the replay).  ``render_master``
writes the multivariant playlist.  ``MediaPlaylist.parse`` reads back what
``render`` wrote so a restarted node continues a broadcast's numbering.

Media sequence numbers are implicit (first segment's number + index), so a
playlist assigns them itself; segment URIs are ``<seq>.ts`` by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

VERSION = 3  # floating-point EXTINF


@dataclass(frozen=True)
class Segment:
    seq: int
    duration: float
    uri: str
    discontinuity: bool = False


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


class MediaPlaylist:
    def __init__(self, target_duration: float = 2.0, window: int = 6, start_seq: int = 0, discontinuity_sequence: int = 0) -> None:
        if window < 1:
            raise ValueError("live window must hold at least 1 segment")
        self.window = window
        self.segments: list[Segment] = []
        self.ended = False
        self._first_seq = start_seq
        self._base_discontinuity_sequence = discontinuity_sequence
        self._target = max(1, math.ceil(target_duration - 1e-6))
        self._pending_discontinuity = False

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

    def add(self, duration: float, uri: str | None = None) -> Segment:
        if self.ended:
            raise ValueError("playlist has ended")
        if not (duration > 0 and math.isfinite(duration)):
            raise ValueError(f"segment duration must be positive, got {duration!r}")
        seq = self.next_seq
        segment = Segment(seq, duration, uri if uri is not None else f"{seq}.ts", self._pending_discontinuity)
        self._pending_discontinuity = False
        self.segments.append(segment)
        self._target = max(self._target, _round_half_up(duration))
        return segment

    def end(self) -> None:
        self.ended = True

    def visible(self) -> tuple[list[Segment], int]:
        """The segments rendered now and the discontinuity sequence of the first one."""
        if self.ended:
            return list(self.segments), self._base_discontinuity_sequence
        start = max(0, len(self.segments) - self.window)
        hidden = sum(1 for segment in self.segments[:start] if segment.discontinuity)
        return self.segments[start:], self._base_discontinuity_sequence + hidden

    def render(self) -> str:
        shown, discontinuity_sequence = self.visible()
        media_sequence = shown[0].seq if shown else self.next_seq
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{VERSION}",
            f"#EXT-X-TARGETDURATION:{self.target_duration}",
            f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}",
        ]
        if discontinuity_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
        if self.ended:
            lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
        for segment in shown:
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f"#EXTINF:{segment.duration:.3f},")
            lines.append(segment.uri)
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
        entries: list[tuple[float, str, bool]] = []
        duration: float | None = None
        discontinuity = False
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
                elif line.startswith("#"):
                    continue
                else:
                    if duration is None:
                        raise ValueError("URI without #EXTINF")
                    entries.append((duration, line, discontinuity))
                    duration = None
                    discontinuity = False
            except ValueError as exc:
                raise ValueError(f"bad playlist line {number}: {exc}") from None
        playlist = cls(target, window, media_sequence, discontinuity_sequence)
        for seg_duration, uri, seg_discontinuity in entries:
            if seg_discontinuity:
                playlist._pending_discontinuity = True
            playlist.add(seg_duration, uri)
        if ended:
            playlist.end()
        return playlist


@dataclass(frozen=True)
class Variant:
    uri: str
    bandwidth: int
    codecs: str
    width: int
    height: int
    average_bandwidth: int | None = None
    frame_rate: float | None = None


def render_master(variants: Sequence[Variant]) -> str:
    if not variants:
        raise ValueError("a master playlist needs at least one variant")
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in variants:
        attributes = [f"BANDWIDTH={variant.bandwidth}"]
        if variant.average_bandwidth is not None:
            attributes.append(f"AVERAGE-BANDWIDTH={variant.average_bandwidth}")
        attributes.append(f"RESOLUTION={variant.width}x{variant.height}")
        attributes.append(f'CODECS="{variant.codecs}"')
        if variant.frame_rate is not None:
            attributes.append(f"FRAME-RATE={variant.frame_rate:.3f}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attributes))
        lines.append(variant.uri)
    return "\n".join(lines) + "\n"
