"""Reading back what onair wrote: playlists with m3u8, segments with ffprobe."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import m3u8


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read()


@dataclass
class SegmentProbe:
    duration: float
    streams: set[str]
    first_video_is_key: bool


@contextmanager
def _readable(url: str, init_url: str | None) -> Iterator[str]:
    """Where ffprobe reads a segment: the URL itself, or an fMP4 segment behind its init section in a temporary file."""
    if init_url is None:
        yield url
        return
    with tempfile.NamedTemporaryFile(suffix=".mp4", delete=False) as fh:
        fh.write(fetch(init_url) + fetch(url))
    try:
        yield fh.name
    finally:
        os.unlink(fh.name)


def probe_segment(ffprobe: str, url: str, init_url: str | None = None) -> SegmentProbe:
    """What ffprobe reads in one segment (one ffprobe run); an fMP4 segment is probed behind its init section."""
    with _readable(url, init_url) as path:
        out = subprocess.run([ffprobe, "-v", "error", "-show_entries",
                              "format=duration:stream=index,codec_type:packet=stream_index,pts_time,duration_time,flags",
                              "-of", "json", path], capture_output=True, timeout=30, check=True)
    doc = json.loads(out.stdout)
    kinds = {s["index"]: s["codec_type"] for s in doc.get("streams", [])}
    packets = doc.get("packets", [])
    video = [p for p in packets if kinds.get(p["stream_index"]) == "video"]
    if init_url is None:
        duration = float(doc["format"]["duration"])
    else:
        # A fragment's format duration counts from media time 0 (fMP4 keeps absolute
        # timestamps); the segment's own duration is its first stream's packets' span.
        duration = _packet_span([p for p in packets if p["stream_index"] == 0])
    return SegmentProbe(duration=duration, streams=set(kinds.values()),
                        first_video_is_key=bool(video) and "K" in video[0].get("flags", ""))


def _packet_span(packets: list[dict[str, str]]) -> float:
    starts = [float(p["pts_time"]) for p in packets]
    ends = [float(p["pts_time"]) + float(p.get("duration_time") or 0) for p in packets]
    return max(ends) - min(starts) if packets else 0.0


def load_media_playlists(master_url: str, with_audio: bool = False) -> dict[str, m3u8.M3U8]:
    """Every variant's media playlist by URL (and, with ``with_audio``, the audio renditions')."""
    master = m3u8.loads(fetch(master_url).decode(), uri=master_url)
    assert master.is_variant, "master playlist has no variants"
    urls = [variant.absolute_uri for variant in master.playlists]
    if with_audio:
        urls += [media.absolute_uri for media in master.media if media.type == "AUDIO" and media.uri]
    return {url: m3u8.loads(fetch(url).decode(), uri=url) for url in urls}


def init_url(segment: m3u8.Segment) -> str | None:
    """The absolute URL of a segment's EXT-X-MAP init section (fMP4), None for MPEG-TS."""
    section = segment.init_section
    if section is None:
        return None
    return urllib.parse.urljoin(segment.base_uri + "/" if not segment.base_uri.endswith("/") else segment.base_uri,
                                section.uri)
