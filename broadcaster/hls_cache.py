"""How long an HTTP cache (an edge, a CDN, a browser) may keep each HLS response: one place, per LL-HLS.

RFC 8216bis §6.2.5/§6.2.6 and Apple's "Enabling Low-Latency HLS" guidance for CDNs:

* init sections, segments and parts never change once written: ``immutable``, kept a year;
* a live playlist changes every part: kept one second, the least ``max-age`` can say (HTTP counts
  whole seconds; half a 0.5 s part target cannot be written; AWS MediaPackage uses the same 1 s
  for LL-HLS media playlists).  A player only reads it to start: then it reloads with
  ``_HLS_msn``/``_HLS_part``;
* a blocking reload's answer (``?_HLS_msn=M&_HLS_part=P``) stays a right answer to that query
  (it lists part P and everything before it), so it is cached under its full query for as long
  as the origin would hold such a request (three target durations): every viewer asking for the
  same next part after the first gets the same response from the cache, a viewer that lags
  behind too;
* an ended playlist (a replay) no longer changes: an hour;
* a 404 for an object that does not exist (yet) is kept at most a part target (rounded down to
  whole seconds: with 0.5 s parts, not at all), so a part written a moment later is not hidden;
* restricted broadcasts: playlists are per viewer (``private, no-store``, never in a shared cache);
  objects carry their signature's expiry (``broadcaster/playback/gate.py``).

ETag and Last-Modified come with every file response (aiohttp's ``FileResponse``), so a cache
revalidates with ``If-None-Match``/``If-Modified-Since`` and gets a 304.
"""

from __future__ import annotations

import math

from ingest.hls.blocking import HOLD_TARGET_DURATIONS

OBJECT = "public, max-age=31536000, immutable"
LIVE_PLAYLIST = "public, max-age=1"
ENDED_PLAYLIST = "public, max-age=3600"
#: a per-viewer (restricted) playlist
PRIVATE = "private, no-store"


def blocking_reload(target_duration: float) -> str:
    """A live playlist answered to ``_HLS_msn``/``_HLS_part``: cacheable by its full query."""
    return f"public, max-age={max(1, math.ceil(HOLD_TARGET_DURATIONS * target_duration))}"


def not_found(part_target: float) -> str:
    """A 404 for an object that may exist soon: cached at most a part target."""
    seconds = int(part_target)
    return f"public, max-age={seconds}" if seconds else "no-cache"


__all__ = ["ENDED_PLAYLIST", "LIVE_PLAYLIST", "OBJECT", "PRIVATE", "blocking_reload", "not_found"]
