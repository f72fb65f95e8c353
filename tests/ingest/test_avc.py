"""ingest.avc: H.264 syntax read from real x264 output (ffmpeg and PyAV), and fuzzed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import avc
from ingest.media import MediaKind, MediaUnit

try:  # tests/ingest may or may not be a package
    from tests.ingest.flvfile import make_flv, read_units
except ImportError:
    from flvfile import make_flv, read_units  # type: ignore[no-redef]


def _encode(tmp: Path, name: str, **options: object) -> list[MediaUnit]:
    return read_units(make_flv(tmp / f"{name}.flv", seconds=2, audio=False, **options).read_bytes())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def bframes(tmp_path_factory: pytest.TempPathFactory) -> list[MediaUnit]:
    return _encode(tmp_path_factory.mktemp("avc"), "bframes", size="640x360", rate=30,
                   x264=("-preset", "veryfast", "-bf", "3"))


def _config(units: list[MediaUnit]) -> avc.DecoderConfig:
    return avc.parse_decoder_config(next(u for u in units if u.kind is MediaKind.VIDEO and u.config).data)


def test_sps_of_a_b_frame_encode(bframes: list[MediaUnit]) -> None:
    config = _config(bframes)
    assert config.length_size == 4 and len(config.sps) == 1 and len(config.pps) == 1
    sps = avc.parse_sps(config.sps[0])
    assert (sps.profile_idc, sps.width, sps.height, sps.chroma_format_idc, sps.bit_depth) == (100, 640, 360, 1, 8)
    assert sps.frame_mbs_only and sps.poc_type == 0  # x264 uses picture order type 0 when it makes B-frames
    assert sps.max_num_reorder_frames == 2  # b-pyramid
    assert sps.frame_ms == pytest.approx(1000 / 30)
    pps = avc.parse_pps(config.pps[0])
    assert pps.sps_id == sps.sps_id == 0


def test_sps_without_b_frames_cropping_and_rates(tmp_path: Path) -> None:
    # 25 fps, a height that is not a multiple of 16 (cropping), no B-frames: picture order type 2
    units = _encode(tmp_path, "plain", size="426x240", rate=25, x264=("-preset", "veryfast", "-bf", "0"))
    sps = avc.parse_sps(_config(units).sps[0])
    assert (sps.width, sps.height, sps.poc_type) == (426, 240, 2)
    assert sps.frame_ms == pytest.approx(40.0)


def test_picture_order_gives_the_display_order(bframes: list[MediaUnit]) -> None:
    config = _config(bframes)
    sps = {s.sps_id: s for s in map(avc.parse_sps, config.sps)}
    pps = {p.pps_id: p for p in map(avc.parse_pps, config.pps)}
    counter = avc.PocCounter()
    frames = [u for u in bframes if u.kind is MediaKind.VIDEO and not u.config]
    keys = []
    epoch = 0
    for unit in frames:
        nals = avc.split_avcc(unit.data, config.length_size)
        first = next(n for n in nals if avc.nal_type(n) in (avc.NAL_SLICE, avc.NAL_IDR))
        header = avc.parse_slice_header(first, sps, pps)
        assert header.idr == unit.keyframe
        epoch += header.idr
        poc = counter.next(header)
        assert poc is not None
        keys.append((epoch, poc))
    assert any(a > b for a, b in zip(keys, keys[1:])), "the encode has no B-frames"
    by_pts = [k for _, k in sorted(zip((u.pts for u in frames), keys))]
    assert by_pts == sorted(keys)  # ffmpeg's presentation order is the picture order


def test_configuration_record_round_trip(bframes: list[MediaUnit]) -> None:
    config = _config(bframes)
    record = avc.avc_decoder_config(config.sps[0], config.pps[0], 4)
    again = avc.parse_decoder_config(record)
    assert again == avc.DecoderConfig(4, (config.sps[0],), (config.pps[0],))
    two = avc.parse_decoder_config(avc.avc_decoder_config(config.sps[0], config.pps[0], 2))
    assert two.length_size == 2


def test_split_avcc() -> None:
    assert avc.split_avcc(b"\x00\x00\x00\x02\x65\x88\x00\x00\x00\x01\x06") == [b"\x65\x88", b"\x06"]
    assert avc.split_avcc(b"\x00\x02\x65\x88", 2) == [b"\x65\x88"]
    with pytest.raises(ValueError, match="does not fit the access unit"):
        avc.split_avcc(b"\x00\x00\x00\x09\x65")
    with pytest.raises(ValueError, match="NAL length is truncated"):
        avc.split_avcc(b"\x00\x00\x00\x01\x65\x00")
    with pytest.raises(ValueError, match="is not 1, 2 or 4"):
        avc.split_avcc(b"", 3)


def test_emulation_prevention_bytes_are_removed() -> None:
    assert avc.rbsp(b"\x67\x00\x00\x03\x01\x00\x00\x03\x00\x05") == b"\x00\x00\x01\x00\x00\x00\x05"
    assert avc.rbsp(b"\x67\x01\x02") == b"\x01\x02"


def test_exp_golomb() -> None:
    # 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3; signed: 1 -> 0, 010 -> 1, 011 -> -1
    reader = avc.BitReader(bytes([0b10100110, 0b01000000]))
    assert [reader.ue(), reader.ue(), reader.ue(), reader.ue()] == [0, 1, 2, 3]
    signed = avc.BitReader(bytes([0b10100110]))
    assert [signed.se(), signed.se(), signed.se()] == [0, 1, -1]
    with pytest.raises(ValueError, match="runs past the end"):
        avc.BitReader(b"\x00").ue()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.sampled_from([avc.NAL_SPS, avc.NAL_PPS, avc.NAL_SLICE, avc.NAL_IDR]))
def test_parsers_take_any_bytes_with_value_error_only(body: bytes, kind: int) -> None:
    nal = bytes([0x60 | kind]) + body
    sps = {0: avc.Sps(0, 100, 30, 1, 8, 64, 64, True, False, 4, 0, 4, None)}
    pps = {0: avc.Pps(0, 0, False)}
    for parse in (avc.parse_sps, avc.parse_pps, lambda n: avc.parse_slice_header(n, sps, pps)):
        try:
            parse(nal)
        except ValueError:
            pass
    for data in (body, nal):
        for length_size in (1, 2, 4):
            try:
                avc.split_avcc(data, length_size)
            except ValueError:
                pass
        try:
            avc.parse_decoder_config(data)
        except ValueError:
            pass
