"""FLV tag bodies <-> :class:`MediaUnit` (pure, no I/O).

RTMP audio/video message payloads are FLV tag bodies, so the RTMP edge parses
them here; the worker pipe carries an FLV byte stream built here too, because
libavformat demuxes FLV natively.

Legacy FLV (``VideoTagHeader``/``AudioTagHeader``) and the Enhanced RTMP
extended headers are recognised; only H.264 and AAC are accepted, anything else
raises :class:`UnsupportedCodec` with the codec's name.
"""

from __future__ import annotations

import struct

from ingest.media import MediaKind, MediaUnit

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18

_VIDEO_CODEC_NAMES = {2: "sorenson-h263", 3: "screen-video", 4: "vp6", 5: "vp6-alpha", 6: "screen-video-2", 7: "h264", 12: "hevc"}
_AUDIO_CODEC_NAMES = {0: "pcm", 1: "adpcm", 2: "mp3", 3: "pcm-le", 4: "nellymoser-16k", 5: "nellymoser-8k",
                      6: "nellymoser", 7: "g711a", 8: "g711u", 10: "aac", 11: "speex", 14: "mp3-8k"}


class UnsupportedCodec(ValueError):
    def __init__(self, kind: str, codec: str) -> None:
        super().__init__(f"unsupported {kind} codec {codec!r}: onair accepts H.264 video and AAC audio")
        self.kind = kind
        self.codec = codec


def parse_video_body(timestamp: int, body: bytes) -> MediaUnit | None:
    """Parse an RTMP video message / FLV video tag body.

    Returns None for bodies that carry no media (end of sequence, video info
    frames); raises ValueError for malformed bodies and UnsupportedCodec for
    codecs the pipeline cannot take.
    """
    if not body:
        raise ValueError("empty video message")
    first = body[0]
    if first & 0x80:  # Enhanced RTMP: IsExHeader
        if len(body) < 5:
            raise ValueError("enhanced video header is truncated")
        fourcc = body[1:5].decode("latin-1")
        if fourcc != "avc1":
            raise UnsupportedCodec("video", fourcc)
        packet_type = first & 0x0F
        frame_type = (first >> 4) & 0x07
        payload = body[5:]
        if packet_type == 0:  # SequenceStart
            return MediaUnit(MediaKind.VIDEO, "h264", timestamp, 0, True, True, payload)
        if packet_type == 1:  # CodedFrames (with SI24 composition time)
            if len(payload) < 3:
                raise ValueError("enhanced video frame is truncated")
            cts = _si24(payload[0:3])
            return MediaUnit(MediaKind.VIDEO, "h264", timestamp, cts, frame_type == 1, False, payload[3:])
        if packet_type == 3:  # CodedFramesX: composition time 0
            return MediaUnit(MediaKind.VIDEO, "h264", timestamp, 0, frame_type == 1, False, payload)
        return None  # SequenceEnd, metadata, MPEG2TSSequenceStart ...
    frame_type = first >> 4
    codec_id = first & 0x0F
    if codec_id != 7:
        raise UnsupportedCodec("video", _VIDEO_CODEC_NAMES.get(codec_id, f"id {codec_id}"))
    if frame_type == 5:  # video info/command frame
        return None
    if len(body) < 5:
        raise ValueError("AVC video header is truncated")
    packet_type = body[1]
    cts = _si24(body[2:5])
    if packet_type == 0:
        return MediaUnit(MediaKind.VIDEO, "h264", timestamp, 0, True, True, body[5:])
    if packet_type == 1:
        return MediaUnit(MediaKind.VIDEO, "h264", timestamp, cts, frame_type == 1, False, body[5:])
    if packet_type == 2:
        return None
    raise ValueError(f"unknown AVC packet type {packet_type}")


def parse_audio_body(timestamp: int, body: bytes) -> MediaUnit | None:
    if not body:
        raise ValueError("empty audio message")
    sound_format = body[0] >> 4
    if sound_format == 9:  # Enhanced RTMP audio: ExHeader
        fourcc = body[1:5].decode("latin-1") if len(body) >= 5 else "?"
        raise UnsupportedCodec("audio", fourcc)
    if sound_format != 10:
        raise UnsupportedCodec("audio", _AUDIO_CODEC_NAMES.get(sound_format, f"id {sound_format}"))
    if len(body) < 2:
        raise ValueError("AAC audio header is truncated")
    packet_type = body[1]
    if packet_type == 0:
        return MediaUnit(MediaKind.AUDIO, "aac", timestamp, 0, True, True, body[2:])
    if packet_type == 1:
        return MediaUnit(MediaKind.AUDIO, "aac", timestamp, 0, True, False, body[2:])
    raise ValueError(f"unknown AAC packet type {packet_type}")


def _si24(b: bytes) -> int:
    value = (b[0] << 16) | (b[1] << 8) | b[2]
    return value - (1 << 24) if value & 0x800000 else value


# --- writing -----------------------------------------------------------------

def file_header(has_audio: bool = True, has_video: bool = True) -> bytes:
    flags = (0x04 if has_audio else 0) | (0x01 if has_video else 0)
    return b"FLV\x01" + bytes([flags]) + struct.pack(">I", 9) + struct.pack(">I", 0)


def unit_body(unit: MediaUnit) -> bytes:
    """The legacy FLV tag body for a unit (what libavformat's FLV demuxer reads)."""
    if unit.kind is MediaKind.VIDEO:
        frame_type = 1 if unit.keyframe else 2
        packet_type = 0 if unit.config else 1
        cts = unit.cts & 0xFFFFFF
        return bytes([(frame_type << 4) | 7, packet_type]) + cts.to_bytes(3, "big") + unit.data
    # AAC, 44 kHz / 16 bit / stereo flags: FLV readers take the real values from the config
    return bytes([0xAF, 0 if unit.config else 1]) + unit.data


def encode_tag(tag_type: int, timestamp: int, body: bytes) -> bytes:
    if len(body) >= 1 << 24:
        raise ValueError("FLV tag body too large")
    ts = timestamp & 0xFFFFFFFF
    header = bytes([tag_type]) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big") + bytes([ts >> 24]) + b"\x00\x00\x00"
    return header + body + struct.pack(">I", len(body) + 11)


def encode_unit(unit: MediaUnit) -> bytes:
    tag_type = TAG_VIDEO if unit.kind is MediaKind.VIDEO else TAG_AUDIO
    return encode_tag(tag_type, unit.dts, unit_body(unit))
