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
from pathlib import Path

from collections.abc import Sequence

from ingest.hls.playlist import MediaPlaylist, RenditionReport

MASTER = "master.m3u8"
INDEX = "index.m3u8"


def broadcast_dir(data_dir: Path, broadcast_id: str) -> Path:
    if not broadcast_id or "/" in broadcast_id or broadcast_id in (".", "..") or "\x00" in broadcast_id:
        raise ValueError(f"bad broadcast id {broadcast_id!r}")
    return data_dir / "hls" / broadcast_id


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
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

    def load_media(self, rendition: str, window: int = 6) -> MediaPlaylist | None:
        """The playlist a previous run left for this rendition, None if there is none.

        An unreadable playlist is treated as absent (its segments get
        overwritten from number 0 again) rather than stopping the broadcast.
        """
        path = self.root / rendition / INDEX
        try:
            return MediaPlaylist.parse(path.read_text(encoding="utf-8"), window)
        except (OSError, ValueError):
            return None
