"""Reading back what onair wrote: playlists with m3u8, segments with ffprobe."""

from __future__ import annotations

import json
import subprocess
import urllib.request
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


def probe_segment(ffprobe: str, url: str) -> SegmentProbe:
    out = subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=duration:stream=codec_type",
                          "-show_packets", "-select_streams", "v", "-of", "json", url],
                         capture_output=True, timeout=30, check=True)
    doc = json.loads(out.stdout)
    packets = doc.get("packets", [])
    streams = {s["codec_type"] for s in doc.get("streams", [])}
    # stream list with -select_streams only shows video; ask again for all stream types
    all_streams = subprocess.run([ffprobe, "-v", "error", "-show_entries", "stream=codec_type", "-of", "json", url],
                                 capture_output=True, timeout=30, check=True)
    streams = {s["codec_type"] for s in json.loads(all_streams.stdout).get("streams", [])}
    return SegmentProbe(duration=float(doc["format"]["duration"]), streams=streams,
                        first_video_is_key=bool(packets) and "K" in packets[0].get("flags", ""))


def load_media_playlists(master_url: str) -> dict[str, m3u8.M3U8]:
    master = m3u8.loads(fetch(master_url).decode(), uri=master_url)
    assert master.is_variant, "master playlist has no variants"
    playlists = {}
    for variant in master.playlists:
        url = variant.absolute_uri
        playlists[url] = m3u8.loads(fetch(url).decode(), uri=url)
    return playlists
