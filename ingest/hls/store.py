"""Where a broadcast's HLS lives on disk, and atomic playlist writes.

Layout under ``<data_dir>/hls/<broadcast_id>/``: ``master.m3u8``,
``<rendition>/index.m3u8`` and ``<rendition>/<seq>.ts`` (segments are written
by the worker; low-latency renditions hold ``init<N>.mp4``, ``s<seq>.m4s`` and
parts ``s<seq>.p<i>.m4s`` instead, and the audio has its own ``audio/``).
Every write goes to a temporary name first and is renamed into place, so an
origin never serves half a playlist.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ingest.hls import recovery
from ingest.hls.playlist import MediaPlaylist, RenditionReport, Segment

MASTER = "master.m3u8"
INDEX = "index.m3u8"
# LL-HLS part file names, ``s<msn>.p<index>.m4s`` (see part_uri)
_PART_NAME = re.compile(r"^s([0-9]{1,20})\.p([0-9]{1,9})\.m4s$")


def init_uri(first_seq: int) -> str:
    """The init section of the worker generation whose first segment is ``first_seq``."""
    return f"init{first_seq}.mp4"


def segment_uri(msn: int) -> str:
    """An LL-HLS (fMP4) segment's file name, relative to the rendition dir."""
    return f"s{msn}.m4s"


def part_uri(msn: int, index: int) -> str:
    """The file name of part ``index`` of segment ``msn``, relative to the rendition dir."""
    return f"s{msn}.p{index}.m4s"


def parse_part_uri(name: str) -> tuple[int, int] | None:
    """(msn, index) of a part file name, None if ``name`` does not name a part."""
    match = _PART_NAME.match(name)
    return (int(match[1]), int(match[2])) if match else None


def broadcast_dir(data_dir: Path, broadcast_id: str) -> Path:
    if not broadcast_id or "/" in broadcast_id or broadcast_id in (".", "..") or "\x00" in broadcast_id:
        raise ValueError(f"bad broadcast id {broadcast_id!r}")
    return data_dir / "hls" / broadcast_id


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write under ``.<name>.tmp`` and rename into place: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)


class HlsStore:
    """One broadcast's HLS directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def rendition_dir(self, rendition: str) -> Path:
        return self.root / rendition

    def write_master(self, text: str) -> None:
        write_atomic(self.root / MASTER, text)

    def write_media(self, rendition: str, playlist: MediaPlaylist, hint_uri: str | None = None,
                    reports: Sequence[RenditionReport] = ()) -> None:
        write_atomic(self.root / rendition / INDEX, playlist.render(hint_uri, reports))

    def remove_parts(self, rendition: str, msn: int) -> None:
        """Delete the part files of segment ``msn`` (the segment file stays)."""
        for part in self.rendition_dir(rendition).glob(f"s{msn}.p*.m4s"):
            part.unlink(missing_ok=True)

    def end_leftovers(self) -> list[str]:
        """End, as replays, the media playlists a node that died left live here (none of its runs will
        continue them: the broadcast ended, or another node took it over); the renditions ended."""
        ended = []
        for rendition_dir in sorted(p for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []:
            index = rendition_dir / INDEX
            try:
                with index.open("rb") as fh:
                    fh.seek(max(0, index.stat().st_size - 64))
                    if b"#EXT-X-ENDLIST" in fh.read():
                        continue
            except OSError:
                continue
            playlist = self.load_media(rendition_dir.name)
            if playlist is not None:
                playlist.end()
                self.write_media(rendition_dir.name, playlist)
                ended.append(rendition_dir.name)
        return ended

    def record_segment(self, rendition: str, segment: Segment) -> None:
        """Journal a completed segment (before a playlist lists it): see :mod:`ingest.hls.recovery`."""
        recovery.record(self.rendition_dir(rendition), segment)

    def load_media(self, rendition: str, window: int = 6, target_duration: float = 1.0) -> MediaPlaylist | None:
        """The full playlist a previous run left for this rendition, None if there is none.

        Rebuilt from the segment journal (every segment, not only the live
        window the node was showing when it died); an unreadable journal and
        playlist are treated as absent (numbering starts from 0 again) rather
        than stopping the broadcast.
        """
        return recovery.load_playlist(self.rendition_dir(rendition), target_duration, window)


def end_leftover_replays(hls_root: Path, keep: set[str]) -> dict[str, list[str]]:
    """:meth:`HlsStore.end_leftovers` for every broadcast under ``hls_root`` but those in ``keep``
    (resumed); the renditions ended, by broadcast."""
    ended: dict[str, list[str]] = {}
    for directory in sorted(hls_root.iterdir()) if hls_root.is_dir() else []:
        if directory.name not in keep and directory.is_dir() and (renditions := HlsStore(directory).end_leftovers()):
            ended[directory.name] = renditions
    return ended
