"""Every segment a rendition ever listed, kept so a node that died can rebuild its full playlists.

While a broadcast is live its ``index.m3u8`` lists only the sliding window;
the replay needs every segment.  Each rendition directory therefore holds
``segments.jsonl``: one JSON line per completed segment, appended before the
playlist that lists it is written (``seq``, ``duration``, ``uri``,
``discontinuity``, ``map``, ``date``).  The origin never serves it (not an HLS
file type).  A process killed mid-write leaves at most a torn last line, which
:func:`load_playlist` skips with a log line; the append is not fsynced (a
node crash loses nothing the kernel has; a power cut may lose the last lines,
and the media they list with them).

:func:`load_playlist` rebuilds the playlist from the journal, or, for a
directory written before journals existed, from ``index.m3u8`` (whatever
window it holds).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ingest.hls.playlist import MediaPlaylist, Segment

log = logging.getLogger("ingest.hls.recovery")

JOURNAL = "segments.jsonl"


def record(rendition_dir: Path, segment: Segment) -> None:
    """Append ``segment`` to the rendition's journal."""
    line = json.dumps({"seq": segment.seq, "duration": segment.duration, "uri": segment.uri,
                       "discontinuity": segment.discontinuity, "map": segment.map_uri,
                       "date": segment.program_date_time}, separators=(",", ":")) + "\n"
    rendition_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(rendition_dir / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _entries(path: Path) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                entry = json.loads(raw)
                seq, duration, uri = int(entry["seq"]), float(entry["duration"]), str(entry["uri"])
            except (ValueError, KeyError, TypeError):
                log.warning("%s line %d is damaged (a write cut short?): the journal is read up to it", path, number)
                break
            if entries and seq != entries[-1]["seq"] + 1:
                if seq <= entries[-1]["seq"]:
                    continue  # written twice: keep the first
                log.warning("%s: segment %d follows %d, the journal is read up to the gap", path, seq,
                            entries[-1]["seq"])
                break
            entries.append({**entry, "seq": seq, "duration": duration, "uri": uri})
    return entries


def load_playlist(rendition_dir: Path, target_duration: float = 1.0, window: int = 6) -> MediaPlaylist | None:
    """The full playlist a previous run left in ``rendition_dir`` (None if it left none)."""
    journal = rendition_dir / JOURNAL
    try:
        entries = _entries(journal) if journal.is_file() else []
    except OSError as exc:
        log.warning("cannot read %s (%s): recovering from the playlist", journal, exc.strerror)
        entries = []
    if not entries:
        return _from_index(rendition_dir, window)
    playlist = MediaPlaylist(target_duration, window, start_seq=entries[0]["seq"])
    for entry in entries:
        if entry.get("discontinuity"):
            playlist.mark_discontinuity()
        playlist.map_uri = entry.get("map")
        date = entry.get("date")
        playlist.add(entry["duration"], entry["uri"], float(date) if date is not None else None)
    index = _from_index(rendition_dir, window)
    if index is not None and index.ended:
        playlist.end()
    return playlist


def _from_index(rendition_dir: Path, window: int) -> MediaPlaylist | None:
    """The playlist ``index.m3u8`` holds; an unreadable one counts as absent (numbering restarts at 0)."""
    try:
        playlist = MediaPlaylist.parse((rendition_dir / "index.m3u8").read_text(encoding="utf-8"), window)
    except (OSError, ValueError):
        return None
    return playlist if playlist.segments else None


__all__ = ["JOURNAL", "load_playlist", "record"]
