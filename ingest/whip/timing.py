"""Media time of WebRTC frames on the node's millisecond clock, free of I/O.

aiortc gives every decoded frame a pts counted from the first RTP packet of its
track (RTP timestamps unwrapped, random origin removed).  Audio and video are
separate RTP streams with unrelated origins, so each track is anchored once, at
the arrival of its first frame, on one session clock; after that the track
follows its RTP timestamps only.  Both tracks therefore share one time base
(A/V stay in sync within the arrival jitter of the first frames), and a stalled
network shows as a jump in RTP time - a gap - never as frames squeezed together.
"""

from __future__ import annotations

from fractions import Fraction


class TrackClock:
    """Maps one track's ``pts * time_base`` to session milliseconds."""

    def __init__(self, session_start: float) -> None:
        self._session_start = session_start
        self._offset_ms: float | None = None

    def to_ms(self, pts: int, time_base: Fraction, arrival: float) -> int:
        media_ms = float(pts * time_base) * 1000.0
        if self._offset_ms is None:
            self._offset_ms = max(0.0, (arrival - self._session_start) * 1000.0) - media_ms
        return max(0, round(self._offset_ms + media_ms))
