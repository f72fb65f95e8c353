"""The H.264 syntax the media repair stage reads (pure, no I/O).

What a publisher's bitstream says, as opposed to what its container flags
claim: the NAL units of an AVCC access unit, the AVCDecoderConfigurationRecord,
the fields of a sequence/picture parameter set that describe the picture
(size, profile) and its ordering (picture order count), and the start of a
slice header up to ``pic_order_cnt_lsb``.  :class:`PocCounter` turns slice
headers into picture order counts (ITU-T H.264 8.2.1.1, type 0), which give
the display order of a stream with B-frames.

Every parser raises :class:`ValueError` on truncated or impossible input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

#: profiles whose SPS carries chroma format, bit depths and scaling matrices (7.3.2.1.1)
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


def split_avcc(data: bytes, length_size: int = 4) -> list[bytes]:
    """The NAL units of one AVCC access unit (``length_size``-byte big-endian lengths)."""
    if length_size not in (1, 2, 4):
        raise ValueError(f"NAL length size {length_size} is not 1, 2 or 4")
    nals: list[bytes] = []
    pos = 0
    end = len(data)
    while pos < end:
        if pos + length_size > end:
            raise ValueError("AVCC NAL length is truncated")
        size = int.from_bytes(data[pos:pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > end:
            raise ValueError(f"AVCC NAL of {size} bytes does not fit the access unit")
        nals.append(data[pos:pos + size])
        pos += size
    return nals


# --- the configuration record (ISO/IEC 14496-15 5.3.3.1) ---------------------

@dataclass(frozen=True)
class DecoderConfig:
    length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]


def parse_decoder_config(record: bytes) -> DecoderConfig:
    if len(record) < 7 or record[0] != 1:
        raise ValueError("not an AVCDecoderConfigurationRecord")
    length_size = (record[4] & 0x03) + 1
    pos = 5
    lists: list[list[bytes]] = []
    for count_mask in (0x1F, 0xFF):
        if pos >= len(record):
            raise ValueError("AVCDecoderConfigurationRecord is truncated")
        count = record[pos] & count_mask
        pos += 1
        nals = []
        for _ in range(count):
            if pos + 2 > len(record):
                raise ValueError("AVCDecoderConfigurationRecord is truncated")
            size = struct.unpack_from(">H", record, pos)[0]
            pos += 2
            if size == 0 or pos + size > len(record):
                raise ValueError("AVCDecoderConfigurationRecord parameter set does not fit")
            nals.append(record[pos:pos + size])
            pos += size
        lists.append(nals)
    return DecoderConfig(length_size, tuple(lists[0]), tuple(lists[1]))


def avc_decoder_config(sps: bytes, pps: bytes, length_size: int = 4) -> bytes:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.2.4.1) for one SPS and one PPS."""
    if len(sps) < 4 or nal_type(sps) != NAL_SPS:
        raise ValueError("invalid SPS NAL unit")
    if not pps or nal_type(pps) != NAL_PPS:
        raise ValueError("invalid PPS NAL unit")
    return (bytes([1, sps[1], sps[2], sps[3], 0xFC | (length_size - 1), 0xE1]) + struct.pack(">H", len(sps)) + sps
            + b"\x01" + struct.pack(">H", len(pps)) + pps)


# --- bit reading -------------------------------------------------------------

def rbsp(nal: bytes, limit: int | None = None) -> bytes:
    """The NAL payload after its header byte, emulation prevention bytes (00 00 03) removed."""
    body = nal[1:limit] if limit is not None else nal[1:]
    if b"\x00\x00\x03" not in body:
        return body
    out = bytearray()
    zeros = 0
    for byte in body:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._bits = len(data) * 8
        self._pos = 0

    def u(self, n: int) -> int:
        if n == 0:
            return 0
        if self._pos + n > self._bits:
            raise ValueError("H.264 syntax element runs past the end of its NAL unit")
        self._pos += n
        return (self._value >> (self._bits - self._pos)) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


# --- parameter sets ----------------------------------------------------------

@dataclass(frozen=True)
class Sps:
    sps_id: int
    profile_idc: int
    level_idc: int
    chroma_format_idc: int
    bit_depth: int
    width: int
    height: int
    frame_mbs_only: bool
    separate_colour_plane: bool
    log2_max_frame_num: int
    poc_type: int
    log2_max_poc_lsb: int
    #: VUI bitstream_restriction's max_num_reorder_frames, None when the SPS does not say
    max_num_reorder_frames: int | None
    #: frame duration (ms) from the VUI timing info, None when the SPS does not say
    frame_ms: float | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """What a decoder or muxer must be set up for anew when it changes (the level is not)."""
        return (self.profile_idc, self.chroma_format_idc, self.bit_depth, self.width, self.height,
                int(self.frame_mbs_only), self.poc_type)


def parse_sps(nal: bytes) -> Sps:
    if not nal or nal_type(nal) != NAL_SPS:
        raise ValueError("not an SPS NAL unit")
    r = BitReader(rbsp(nal))
    profile_idc = r.u(8)
    r.u(8)  # constraint flags
    level_idc = r.u(8)
    sps_id = r.ue()
    if sps_id > 31:
        raise ValueError(f"seq_parameter_set_id {sps_id} is out of range")
    chroma_format_idc, separate, bit_depth = 1, False, 8
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc > 3:
            raise ValueError(f"chroma_format_idc {chroma_format_idc} is out of range")
        if chroma_format_idc == 3:
            separate = bool(r.u(1))
        bit_depth = r.ue() + 8
        r.ue()  # bit_depth_chroma_minus8
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.u(1):
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    log2_max_frame_num = r.ue() + 4
    poc_type = r.ue()
    log2_max_poc_lsb = 0
    if poc_type == 0:
        log2_max_poc_lsb = r.ue() + 4
        if log2_max_poc_lsb > 16:
            raise ValueError("log2_max_pic_order_cnt_lsb is out of range")
    elif poc_type == 1:
        r.u(1)
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    elif poc_type != 2:
        raise ValueError(f"pic_order_cnt_type {poc_type} is out of range")
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = bool(r.u(1))
    if not frame_mbs_only:
        r.u(1)  # mb_adaptive_frame_field_flag
    r.u(1)  # direct_8x8_inference_flag
    crop = (0, 0, 0, 0)
    if r.u(1):
        crop = (r.ue(), r.ue(), r.ue(), r.ue())
    chroma_array = 0 if separate else chroma_format_idc
    sub_w = 2 if chroma_array in (1, 2) else 1
    sub_h = 2 if chroma_array == 1 else 1
    unit_x = 1 if chroma_array == 0 else sub_w
    unit_y = (2 - int(frame_mbs_only)) * (1 if chroma_array == 0 else sub_h)
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = (2 - int(frame_mbs_only)) * height_units * 16 - unit_y * (crop[2] + crop[3])
    if width <= 0 or height <= 0:
        raise ValueError("SPS cropping leaves no picture")
    vui = _Vui()
    try:
        if r.u(1):
            _read_vui(r, vui)
    except ValueError:
        pass  # a truncated VUI still leaves a usable SPS, and what was read before the end
    return Sps(sps_id, profile_idc, level_idc, chroma_format_idc, bit_depth, width, height, frame_mbs_only,
               separate, log2_max_frame_num, poc_type, log2_max_poc_lsb, vui.reorder, vui.frame_ms)


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last, next_ = 8, 8
    for _ in range(size):
        if next_ != 0:
            next_ = (last + r.se() + 256) % 256
        last = next_ if next_ != 0 else last


def _skip_hrd(r: BitReader) -> None:
    count = r.ue() + 1
    r.u(8)  # bit_rate_scale, cpb_size_scale
    for _ in range(count):
        r.ue()
        r.ue()
        r.u(1)
    r.u(20)  # four 5-bit lengths


@dataclass
class _Vui:
    reorder: int | None = None
    frame_ms: float | None = None


def _read_vui(r: BitReader, vui: _Vui) -> None:
    if r.u(1) and r.u(8) == 255:  # aspect_ratio_info_present_flag, aspect_ratio_idc == Extended_SAR
        r.u(32)
    if r.u(1):  # overscan_info_present_flag
        r.u(1)
    if r.u(1):  # video_signal_type_present_flag
        r.u(4)
        if r.u(1):
            r.u(24)
    if r.u(1):  # chroma_loc_info_present_flag
        r.ue()
        r.ue()
    if r.u(1):  # timing_info_present_flag
        units, scale = r.u(32), r.u(32)
        r.u(1)
        if units and scale and 1 <= scale / (2 * units) <= 240:
            vui.frame_ms = 2000 * units / scale  # a frame is two ticks

    nal_hrd = r.u(1)
    if nal_hrd:
        _skip_hrd(r)
    vcl_hrd = r.u(1)
    if vcl_hrd:
        _skip_hrd(r)
    if nal_hrd or vcl_hrd:
        r.u(1)  # low_delay_hrd_flag
    r.u(1)  # pic_struct_present_flag
    if not r.u(1):  # bitstream_restriction_flag
        return
    r.u(1)
    for _ in range(4):
        r.ue()
    reorder = r.ue()
    vui.reorder = reorder if reorder <= 16 else None


@dataclass(frozen=True)
class Pps:
    pps_id: int
    sps_id: int
    bottom_field_pic_order_in_frame_present: bool


def parse_pps(nal: bytes) -> Pps:
    if not nal or nal_type(nal) != NAL_PPS:
        raise ValueError("not a PPS NAL unit")
    r = BitReader(rbsp(nal, 16))
    pps_id = r.ue()
    sps_id = r.ue()
    if pps_id > 255 or sps_id > 31:
        raise ValueError("PPS or SPS id is out of range")
    r.u(1)  # entropy_coding_mode_flag
    return Pps(pps_id, sps_id, bool(r.u(1)))


# --- slices and picture order ------------------------------------------------

@dataclass(frozen=True)
class SliceHeader:
    idr: bool
    reference: bool  # nal_ref_idc != 0
    slice_type: int  # 0 P, 1 B, 2 I, 3 SP, 4 SI
    frame_num: int
    field: bool
    poc_lsb: int
    delta_poc_bottom: int
    sps: Sps


def parse_slice_header(nal: bytes, sps_by_id: dict[int, Sps], pps_by_id: dict[int, Pps]) -> SliceHeader:
    kind = nal_type(nal) if nal else -1
    if kind not in (NAL_SLICE, NAL_IDR):
        raise ValueError("not a coded slice NAL unit")
    r = BitReader(rbsp(nal, 40))
    r.ue()  # first_mb_in_slice
    slice_type = r.ue() % 5
    pps_id = r.ue()
    pps = pps_by_id.get(pps_id)
    if pps is None:
        raise ValueError(f"slice refers to unknown PPS {pps_id}")
    sps = sps_by_id.get(pps.sps_id)
    if sps is None:
        raise ValueError(f"PPS {pps_id} refers to unknown SPS {pps.sps_id}")
    if sps.separate_colour_plane:
        r.u(2)
    frame_num = r.u(sps.log2_max_frame_num)
    field = False
    if not sps.frame_mbs_only:
        field = bool(r.u(1))
        if field:
            r.u(1)  # bottom_field_flag
    if kind == NAL_IDR:
        r.ue()  # idr_pic_id
    poc_lsb = delta_bottom = 0
    if sps.poc_type == 0:
        poc_lsb = r.u(sps.log2_max_poc_lsb)
        if pps.bottom_field_pic_order_in_frame_present and not field:
            delta_bottom = r.se()
    return SliceHeader(kind == NAL_IDR, bool(nal[0] & 0x60), slice_type, frame_num, field, poc_lsb, delta_bottom, sps)


class PocCounter:
    """Picture order counts of successive frames (type 0, 8.2.1.1); None where they cannot be known."""

    def __init__(self) -> None:
        self._prev_msb = 0
        self._prev_lsb = 0

    def next(self, header: SliceHeader) -> int | None:
        sps = header.sps
        if sps.poc_type != 0 or header.field:
            return None  # type 1 and field pairs: not worked out here
        if header.idr:
            self._prev_msb = self._prev_lsb = 0
        max_lsb = 1 << sps.log2_max_poc_lsb
        lsb = header.poc_lsb
        if lsb < self._prev_lsb and self._prev_lsb - lsb >= max_lsb // 2:
            msb = self._prev_msb + max_lsb
        elif lsb > self._prev_lsb and lsb - self._prev_lsb > max_lsb // 2:
            msb = self._prev_msb - max_lsb
        else:
            msb = self._prev_msb
        top = msb + lsb
        poc = min(top, top + header.delta_poc_bottom)
        if header.reference:
            self._prev_msb, self._prev_lsb = msb, lsb
        return poc
