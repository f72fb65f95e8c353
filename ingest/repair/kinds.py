"""What the media repair stage can repair: the kinds, and the notice of one repair.

A kind is a stable, low-cardinality name: it is the ``kind`` label of
``onair_media_repairs_total`` in ``/metrics`` and a key of a live broadcast's
``live.transcoder.repairs`` in the API.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RepairKind(str, enum.Enum):
    #: the 32-bit millisecond clock of RTMP/FLV wrapped (after 49.7 days, or from a high start): unwrapped
    TIMESTAMP_WRAP = "timestamp_wrap"
    #: timestamps jumped (forward beyond 10 s, or back beyond 1 s): the timeline continues after the last unit
    TIMESTAMP_JUMP = "timestamp_jump"
    #: a decoding timestamp not after the previous one of its track (duplicate or backward): moved 1 ms after it
    DTS_NOT_INCREASING = "dts_not_increasing"
    #: a video frame more than half a frame from its timestamp on the stream's frame grid (frames sent
    #: closer together than the frame rate, or stamped when sent rather than when captured: see .cadence)
    FRAME_TIMING = "frame_timing"
    #: a presentation time before the decoding time: raised to it
    PTS_BEFORE_DTS = "pts_before_dts"
    #: presentation times out of display order (B-frames whose composition offsets are missing or
    #: wrong, or a picture shown before the one before it): taken from the picture order count
    COMPOSITION = "composition"
    #: the container's keyframe flag disagrees with the bitstream (an IDR picture or not): corrected
    KEYFRAME_FLAG = "keyframe_flag"
    #: in-band SPS/PPS describing another picture (size, profile) than the configuration: new configuration
    PARAMETER_SETS = "parameter_sets"
    #: a video unit whose NAL units cannot be framed, or one that follows it before the next IDR: dropped
    UNREADABLE = "unreadable_unit"


@dataclass(frozen=True)
class Repair:
    kind: RepairKind
    #: "video" or "audio"
    track: str
    #: what was seen and what was done, for the log line
    detail: str
