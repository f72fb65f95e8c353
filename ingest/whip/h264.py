"""H.264 bitstream shapes, free of I/O: Annex B <-> AVCC and the AVCDecoderConfigurationRecord.

libx264 hands out Annex B (start codes); the node's :class:`ingest.media.MediaUnit`
wants AVCC (4-byte big-endian NAL lengths) plus one configuration record built
from the SPS and PPS.
"""

from __future__ import annotations

import struct

from ingest.avc import NAL_AUD, NAL_PPS, NAL_SPS, avc_decoder_config, nal_type

__all__ = ["NAL_AUD", "NAL_PPS", "NAL_SPS", "avc_decoder_config", "nal_type", "split_annexb", "is_annexb", "to_avcc",
           "config_from_extradata", "access_unit_to_avcc"]


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (3- or 4-byte start codes)."""
    nals: list[bytes] = []
    i = data.find(b"\x00\x00\x01")
    if i < 0:
        raise ValueError("no Annex B start code in H.264 data")
    start = i + 3
    while True:
        j = data.find(b"\x00\x00\x01", start)
        if j < 0:
            nal = data[start:]
            if nal:
                nals.append(nal)
            break
        end = j - 1 if j > 0 and data[j - 1] == 0 else j
        if end > start:
            nals.append(data[start:end])
        start = j + 3
    return [n for n in nals if n]


def is_annexb(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")


def to_avcc(nals: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(n)) + n for n in nals)


def config_from_extradata(extradata: bytes) -> bytes:
    """The configuration record from an encoder's extradata (Annex B SPS/PPS, or already a record)."""
    if extradata[:1] == b"\x01":
        return bytes(extradata)
    nals = split_annexb(extradata)
    sps = next((n for n in nals if nal_type(n) == NAL_SPS), None)
    pps = next((n for n in nals if nal_type(n) == NAL_PPS), None)
    if sps is None or pps is None:
        raise ValueError("encoder extradata has no SPS/PPS")
    return avc_decoder_config(sps, pps)


def access_unit_to_avcc(data: bytes) -> bytes:
    """One encoded access unit as AVCC, access unit delimiters dropped (HLS muxers add their own)."""
    if not is_annexb(data):
        return bytes(data)
    return to_avcc([n for n in split_annexb(data) if nal_type(n) != NAL_AUD])
