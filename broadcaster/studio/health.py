"""A live broadcast's health for the studio, once a second: figures and the warnings they call for.

The warnings are pure decisions on the figures (tested alone):

- the keyframe interval is longer than the segment target: segments can only
  start on a keyframe, so they come out longer than the target and viewers sit
  further behind (and LL-HLS players wait longer to join);
- the bitrate is unstable: over the last seconds it swung by more than half
  its median (a saturated uplink or an encoder starved of CPU looks like this);
  the seconds before the first bytes and the first, partial, second are left out.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

#: a keyframe interval up to this much over the segment target is rounding, not a problem
KEYFRAME_TOLERANCE = 0.05
#: fewer per-second samples than this say nothing about stability
MIN_SAMPLES = 5
UNSTABLE_SWING = 0.5


@dataclass(frozen=True)
class HealthWarning:
    code: str
    message: str


def warnings(keyframe_interval: float | None, segment_target: float, bitrates: list[float]) -> list[HealthWarning]:
    found: list[HealthWarning] = []
    if keyframe_interval is not None and keyframe_interval > segment_target + KEYFRAME_TOLERANCE:
        found.append(HealthWarning(
            "keyframe_interval",
            f"keyframe interval {keyframe_interval:.1f} s is longer than the segment target {segment_target:g} s: "
            f"set the encoder's keyframe interval to {segment_target:g} s or less"))
    # before the first bytes the rate is 0, and the first second with data is only partly covered
    start = next((i for i, b in enumerate(bitrates) if b > 0), len(bitrates))
    bitrates = bitrates[start + 1:]
    if len(bitrates) >= MIN_SAMPLES:
        median = statistics.median(bitrates)
        if median > 0 and (max(bitrates) - min(bitrates)) > UNSTABLE_SWING * median:
            found.append(HealthWarning(
                "bitrate_unstable",
                f"bitrate unstable: {min(bitrates) / 1000:.0f}–{max(bitrates) / 1000:.0f} kbit/s over the last "
                f"{len(bitrates)} s (median {median / 1000:.0f} kbit/s)"))
    return found


def comments_per_minute(history: list[dict[str, Any]], now: float) -> int:
    """Comments of the last minute in the broadcast's chat history (``ts`` in milliseconds)."""
    since = (now - 60) * 1000
    return sum(1 for comment in history if isinstance(comment.get("ts"), (int, float)) and comment["ts"] >= since)


def health(status: str, live: dict[str, Any] | None, *, segment_target: float, viewers: int, comments: int,
           now: float) -> dict[str, Any]:
    """The document ``GET /api/broadcasts/{id}/health`` answers."""
    live = live or {}
    transcoder = live.get("transcoder") or {}
    delay = live.get("publish_to_playlist") or {}
    keyframe = live.get("keyframe_interval")
    samples = [float(b) for b in live.get("bitrate_samples") or []]
    return {
        "status": status,
        "at": now,
        "ingest_bitrate": live.get("bitrate"),
        "fps": live.get("fps"),
        "keyframe_interval": keyframe,
        "segment_target": segment_target,
        "dropped_units": transcoder.get("dropped_units"),
        "transcoder_speed": transcoder.get("realtime_factor"),
        "publish_to_playlist": delay.get("last"),
        "viewers": viewers,
        "comments_per_minute": comments,
        "warnings": [asdict(w) for w in warnings(keyframe, segment_target, samples)] if live else [],
    }
