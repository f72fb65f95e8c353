"""RFC 6381 codec strings for the master playlist's CODECS attribute (pure).

Derived from the real bitstream: ``avc1.PPCCLL`` from an H.264 SPS (profile,
constraint flags, level) and ``mp4a.40.N`` from an AAC AudioSpecificConfig.
"""

from __future__ import annotations


def avc_from_avcc(record: bytes) -> str:
    """From an AVCDecoderConfigurationRecord (bytes 1-3 copy the SPS header)."""
    if len(record) < 4 or record[0] != 1:
        raise ValueError("AVCDecoderConfigurationRecord is truncated or has a bad version")
    return f"avc1.{record[1]:02x}{record[2]:02x}{record[3]:02x}"


def avc_from_annexb(data: bytes) -> str | None:
    """From the first SPS NAL unit in an Annex B access unit, None if there is none."""
    start = 0
    while True:
        index = data.find(b"\x00\x00\x01", start)
        if index < 0 or index + 6 > len(data):
            return None
        nal = data[index + 3:]
        if nal[0] & 0x1F == 7:
            return f"avc1.{nal[1]:02x}{nal[2]:02x}{nal[3]:02x}"
        start = index + 3


def avc_from_packet(data: bytes) -> str | None:
    """From an access unit in Annex B or AVCC (4-byte lengths) form."""
    found = avc_from_annexb(data)
    if found is not None:
        return found
    offset = 0
    while offset + 4 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        nal = data[offset + 4:offset + 4 + size]
        if size < 4 or len(nal) < size:
            return None
        if nal[0] & 0x1F == 7:
            return f"avc1.{nal[1]:02x}{nal[2]:02x}{nal[3]:02x}"
        offset += 4 + size
    return None


def aac_from_asc(config: bytes) -> str:
    """``mp4a.40.<audio object type>`` from an AudioSpecificConfig."""
    if len(config) < 2:
        raise ValueError("AudioSpecificConfig is truncated")
    object_type = config[0] >> 3
    if object_type == 31:  # escape: 32 + next 6 bits
        object_type = 32 + (((config[0] & 0x07) << 3) | (config[1] >> 5))
    return f"mp4a.40.{object_type}"
