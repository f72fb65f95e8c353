"""Where in the recording each comment and each second of reactions belongs.  Pure: no I/O.

A comment belongs to the live edge when it was published: the media whose program date-time
(``#EXT-X-PROGRAM-DATE-TIME``: when that media was live at the ingest) is the comment's publication
time.  The replay's segments carry their program date-times (the segment journal keeps them, across
reconnects and node restarts), so a publication time maps to a position in the recording: the segment
live at that moment, plus how far into it.  A moment between two segments (the publisher was away)
maps to the start of the next one; before the first segment, to 0; after the last, to the end.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from ingest.hls.playlist import Segment

#: the fields of a comment the replay shows (its author's id included: players key on it)
_COMMENT_FIELDS = ("id", "seq", "ts", "author", "text", "question")


class MediaClock:
    """Wall-clock time (epoch seconds) → position in the recording (seconds)."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self._dates: list[float] = []
        self._starts: list[float] = []
        self._durations: list[float] = []
        position = 0.0
        for segment in segments:
            if segment.program_date_time is not None and \
                    (not self._dates or segment.program_date_time > self._dates[-1]):
                self._dates.append(segment.program_date_time)
                self._starts.append(position)
                self._durations.append(segment.duration)
            elif self._durations:  # undated: it lengthens the previous dated stretch
                self._durations[-1] += segment.duration
            position += segment.duration
        self.duration = position

    def position(self, wall: float) -> float:
        index = bisect.bisect_right(self._dates, wall) - 1
        if index < 0:
            return 0.0
        return self._starts[index] + min(wall - self._dates[index], self._durations[index])


def replay_entries(clock: MediaClock, comments: Sequence[dict[str, Any]],
                   reactions: dict[int, dict[str, int]]) -> list[dict[str, Any]]:
    """``[{t, type: "comment", ...}, {t, type: "reactions", counts}]`` in ``t`` order (comments in seq
    order at equal ``t``)."""
    entries: list[dict[str, Any]] = []
    for comment in comments:
        if comment.get("removed"):
            continue
        entry: dict[str, Any] = {"t": round(clock.position(float(comment.get("ts", 0)) / 1000), 3),
                                 "type": "comment"}
        entry.update((k, comment[k]) for k in _COMMENT_FIELDS if k in comment)
        entry["question"] = bool(entry.get("question"))
        entries.append(entry)
    for second, counts in reactions.items():
        entries.append({"t": round(clock.position(second + 0.5), 3), "type": "reactions", "counts": counts})
    entries.sort(key=lambda e: (e["t"], e["type"] != "comment", e.get("seq") or 0))
    return entries


__all__ = ["MediaClock", "replay_entries"]
