"""The rendition ladder: defaults, config parsing, per-source selection."""

import pytest

from ingest.transcode.ladder import (
    Rendition,
    default_ladder,
    h264_level,
    parse_ladder,
    scaled_width,
    select_for_source,
)


def names(ladder: list[Rendition]) -> list[str]:
    return [r.name for r in ladder]


def test_default_ladder() -> None:
    ladder = default_ladder()
    assert names(ladder) == ["source", "1080p", "720p", "480p", "360p"]
    assert ladder[0] == Rendition("source", True, None, None)
    assert [r.video_bitrate for r in ladder[1:]] == [5_000_000, 2_800_000, 1_400_000, 800_000]
    assert all(r.preset == "veryfast" for r in ladder)


def test_parse_ladder() -> None:
    assert names(parse_ladder("source,720p,360p")) == ["source", "720p", "360p"]
    assert parse_ladder(" 720p@2500k ")[0] == Rendition("720p", False, 720, 2_500_000)
    assert parse_ladder("source") == [Rendition("source", True, None, None)]
    assert parse_ladder("240p")[0].video_bitrate == 400_000


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "ladder spec is empty"),
        (" , ", "ladder spec is empty"),
        ("source,,720p", "empty rendition name in ladder spec 'source,,720p'"),
        ("720", "bad rendition '720' in ladder spec: expected 'source' or '<height>p' (e.g. '720p' or '720p@2500k')"),
        ("hd", "bad rendition 'hd' in ladder spec: expected 'source' or '<height>p' (e.g. '720p' or '720p@2500k')"),
        ("721p", "bad rendition '721p' in ladder spec: height must be even and between 64 and 4320"),
        ("9000p", "bad rendition '9000p' in ladder spec: height must be even and between 64 and 4320"),
        ("720p@10k", "bad rendition '720p@10k' in ladder spec: bitrate must be at least 50k"),
        ("720p,source,720p", "duplicate rendition '720p' in ladder spec"),
    ],
)
def test_parse_ladder_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_ladder(spec)
    assert str(info.value) == message


def test_480p_source_gets_no_upscaled_rungs() -> None:
    selected = select_for_source(default_ladder(), 854, 480, "h264")
    assert names(selected) == ["source", "360p"]


def test_1080p_source_keeps_lower_rungs_only() -> None:
    assert names(select_for_source(default_ladder(), 1920, 1080, "h264")) == ["source", "720p", "480p", "360p"]


def test_passthrough_only_for_h264() -> None:
    assert names(select_for_source(default_ladder(), 1280, 720, "hevc")) == ["480p", "360p"]


def test_passthrough_only_ladder() -> None:
    assert names(select_for_source(parse_ladder("source"), 1280, 720, "h264")) == ["source"]


def test_nothing_left_gives_a_rung_at_source_height() -> None:
    selected = select_for_source(parse_ladder("720p,360p"), 320, 240, "h264")
    assert selected == [Rendition("240p", False, 240, 400_000)]
    odd = select_for_source(parse_ladder("source"), 640, 361, "vp8")
    assert names(odd) == ["360p"]


def test_geometry_and_level() -> None:
    assert scaled_width(1920, 1080, 720) == 1280
    assert scaled_width(854, 480, 360) == 640
    assert scaled_width(320, 240, 180) == 240
    assert h264_level(1280, 720, 30, 3_360_000) == 31
    assert h264_level(1920, 1080, 30, 6_000_000) == 40
    assert h264_level(640, 360, 30, 960_000) == 30
    assert h264_level(320, 240, 25, 400_000) == 13
