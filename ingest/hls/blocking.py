"""When an LL-HLS request that may be held can be answered: pure decisions, no I/O, no clock.

Two kinds of request may be held by the origin until the packager moves on:

* a blocking playlist reload, ``index.m3u8?_HLS_msn=M[&_HLS_part=P]``
  (RFC 8216bis §6.2.5.2), decided by :func:`decide_reload`;
* a GET of a part the playlist hints (``EXT-X-PRELOAD-HINT``) but that is not
  written yet (§6.2.6), decided by :func:`decide_part`.

Each call answers :class:`Ready`, :class:`Wait` or :class:`Reject` for the
playlist's current :class:`~ingest.hls.watch.PlaylistPosition` and the time the
request has been held so far (the caller owns the clock).  The origin
(``broadcaster/origin_blocking.py``) waits on the watch after ``Wait`` and asks
again after every publish.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.hls.store import parse_part_uri
from ingest.hls.watch import PlaylistPosition

#: "A Server that cannot provide the requested Playlist after blocking for more than
#: three Target Durations SHOULD return Service Unavailable" (§6.2.5.2); parts use the same bound.
HOLD_TARGET_DURATIONS = 3
#: "If the _HLS_msn is greater than the Media Sequence Number of the last Media Segment
#: in the current Playlist plus two ... the server SHOULD immediately return Bad Request"
MSN_AHEAD_LIMIT = 2
# decimal-integer (RFC 8216bis §4.2): digits only, 0 to 2^64-1
_DECIMAL = re.compile(r"^[0-9]{1,20}$")
_MAX_DECIMAL = 2**64 - 1


@dataclass(frozen=True)
class Ready:
    """Answer now with the file as it is on disk."""


@dataclass(frozen=True)
class Wait:
    """Hold the request until the playlist is published again, at most ``remaining`` seconds."""

    remaining: float


@dataclass(frozen=True)
class Reject:
    status: int
    reason: str


Decision = Ready | Wait | Reject


def hold_limit(position: PlaylistPosition) -> float:
    """How long a request may be held against this playlist, seconds."""
    return HOLD_TARGET_DURATIONS * position.target_duration


def advance_part_limit(part_target: float) -> float:
    """"three divided by the Part Target Duration if the Part Target Duration is less than
    one second, or three otherwise" (§6.2.5.2): how many parts past the newest one a
    client may ask for."""
    return 3 / part_target if part_target < 1 else 3


def _decimal(name: str, raw: str) -> int | Reject:
    if not _DECIMAL.match(raw) or int(raw) > _MAX_DECIMAL:
        shown = raw if len(raw) <= 24 else raw[:24] + "..."
        return Reject(400, f"{name} must be a decimal integer from 0 to 2^64-1, not {shown!r}")
    return int(raw)


def _satisfied(position: PlaylistPosition, msn: int, part: int | None) -> bool:
    """Whether the playlist as published answers ``_HLS_msn=msn[&_HLS_part=part]``."""
    if part is None:
        # "until the Playlist contains a Media Segment with a Media Sequence Number of M or
        # later": a segment is a Media Segment once complete (the one being built is only parts)
        return msn <= position.last_msn
    part_msn, last_part = position.edge
    if msn < part_msn:
        # Segment msn is complete and a part of a later segment is listed: whether part
        # exists in msn or rolls over to part 0 of msn + 1 (see _roll_over), it is listed.
        return True
    if msn == part_msn:
        return part <= last_part
    # a complete segment of a playlist that lists no parts for it (parts not tracked)
    return msn <= position.last_msn


def _roll_over(position: PlaylistPosition, msn: int, part: int) -> tuple[int, int]:
    """"If the Client requests a Part Index greater than that of the final Partial Segment
    of the Parent Segment, the Server MUST treat the request as one for Part Index 0 of the
    following Parent Segment."  The final part of a segment is known here only for the
    segment that has just completed (its last part is still the newest one listed); for
    older segments the roll-over makes no difference (a later part is already listed)."""
    part_msn, last_part = position.edge
    if msn == part_msn == position.last_msn and last_part >= 0 and part > last_part:
        return msn + 1, 0
    return msn, part


def _parts_ahead(position: PlaylistPosition, msn: int, part: int) -> int:
    """How many parts past the newest listed one (msn, part) is, counted low: every segment
    between has at least one part, and nothing is assumed about how many parts the segment
    being built will still get, so a request is never refused for a guess at segmentation."""
    part_msn, last_part = position.edge
    if msn < part_msn:
        return 0
    if msn == part_msn:
        return part - last_part
    return (msn - part_msn - 1) + (part + 1)


def decide_reload(position: PlaylistPosition | None, msn_raw: str | None, part_raw: str | None,
                  waited: float = 0.0) -> Decision:
    """What to do with a media playlist request carrying ``_HLS_msn``/``_HLS_part``.

    ``position`` is the playlist's live position on this node (None: not live here),
    ``msn_raw``/``part_raw`` the query values as sent (None: absent), ``waited`` the
    seconds the request has been held so far.
    """
    if msn_raw is None and part_raw is None:
        return Ready()
    if position is None or position.ended:
        # "A Server MUST ignore _HLS_msn and _HLS_part if the Playlist contains an
        # EXT-X-ENDLIST tag"; a playlist that is not live here has nothing to wait for.
        return Ready()
    if msn_raw is None:
        return Reject(400, "_HLS_part requires _HLS_msn")
    msn = _decimal("_HLS_msn", msn_raw)
    if isinstance(msn, Reject):
        return msn
    part: int | None = None
    if part_raw is not None:
        parsed = _decimal("_HLS_part", part_raw)
        if isinstance(parsed, Reject):
            return parsed
        msn, part = _roll_over(position, msn, parsed)
    if _satisfied(position, msn, part):
        return Ready()
    # The segment being built counts as the last one here: its parts are listed, and a
    # client switching renditions asks from another rendition's report, which may be a
    # segment ahead of this one.  One segment more lenient than "last complete + 2".
    newest = position.newest_msn
    if msn > newest + MSN_AHEAD_LIMIT:
        return Reject(400, f"_HLS_msn={msn} is more than {MSN_AHEAD_LIMIT} segments past the playlist's "
                           f"last segment ({newest})")
    if part is not None:
        limit = advance_part_limit(position.part_target)
        ahead = _parts_ahead(position, msn, part)
        if ahead > limit:
            part_msn, last_part = position.edge
            return Reject(400, f"_HLS_msn={msn}&_HLS_part={part} is {ahead} parts past the playlist's last part "
                               f"(segment {part_msn} part {last_part}); the limit is {limit:g}")
    remaining = hold_limit(position) - waited
    if remaining <= 0:
        return Reject(503, f"the playlist did not reach the requested position within "
                           f"{hold_limit(position):g} s (three target durations)")
    return Wait(remaining)


def holdable_part(position: PlaylistPosition | None, name: str) -> bool:
    """Whether a request for the missing file ``name`` (in the playlist's rendition dir)
    names a part about to be written: the preload hint, or the part right after the
    newest one listed (the hint of a playlist the client has not seen yet)."""
    if position is None or position.ended:
        return False
    if position.hint_uri is not None and name == position.hint_uri:
        return True
    parsed = parse_part_uri(name)
    if parsed is None:
        return False
    part_msn, last_part = position.edge
    following = {(part_msn + 1, 0)}
    if part_msn > position.last_msn:
        # the segment being built may get another part, or end here
        following.add((part_msn, last_part + 1))
    return parsed in following


def decide_part(position: PlaylistPosition | None, name: str, waited: float = 0.0) -> Wait | Reject:
    """What to do with a GET of the part file ``name`` that is not on disk (yet).

    "The server SHOULD respond with 'Not Found' (such as HTTP 404) to a request for a
    resource that it cannot find and that is not specified by an EXT-X-PRELOAD-HINT tag
    in an active Media Playlist" (§6.2.6); a hinted one is held until it is written.
    """
    if position is None or not holdable_part(position, name):
        return Reject(404, "not found")
    remaining = hold_limit(position) - waited
    if remaining <= 0:
        return Reject(404, f"{name} was not written within {hold_limit(position):g} s (three target durations)")
    return Wait(remaining)
