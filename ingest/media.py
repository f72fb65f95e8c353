"""The one media abstraction where RTMP and WHIP meet: codec-typed units.

A unit is one access unit (a video frame or an audio frame) or a codec
configuration record, timed in milliseconds like FLV/RTMP.  Video payloads are
H.264 in AVCC form (4-byte length-prefixed NAL units); the configuration record
is the AVCDecoderConfigurationRecord.  Audio payloads are raw AAC frames; the
configuration record is the AudioSpecificConfig.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class MediaKind(enum.Enum):
    VIDEO = "video"
    AUDIO = "audio"


#: Codecs the pipeline accepts from a publisher.
SUPPORTED_VIDEO_CODECS = frozenset({"h264"})
SUPPORTED_AUDIO_CODECS = frozenset({"aac"})


@dataclass(frozen=True, slots=True)
class MediaUnit:
    kind: MediaKind
    codec: str
    #: decoding timestamp, milliseconds (RTMP/FLV clock)
    dts: int
    #: composition offset, milliseconds: pts = dts + cts
    cts: int
    keyframe: bool
    #: True for a codec configuration record (sequence header), not media
    config: bool
    data: bytes

    @property
    def pts(self) -> int:
        return self.dts + self.cts
