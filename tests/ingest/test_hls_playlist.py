"""HLS playlist text: exact output for live windows, discontinuities, VOD and the master."""

import m3u8
import pytest

from ingest.hls import codecs
from ingest.hls.playlist import MediaPlaylist, Variant, render_master


def test_live_sliding_window() -> None:
    playlist = MediaPlaylist(target_duration=2.0, window=3)
    for duration in (2.0, 2.0, 1.96, 2.04, 2.0):
        playlist.add(duration)
    assert playlist.render() == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-TARGETDURATION:2\n"
        "#EXT-X-MEDIA-SEQUENCE:2\n"
        "#EXTINF:1.960,\n2.ts\n"
        "#EXTINF:2.040,\n3.ts\n"
        "#EXTINF:2.000,\n4.ts\n"
    )
    assert playlist.next_seq == 5


def test_discontinuity_and_its_sequence_when_it_slides_out() -> None:
    playlist = MediaPlaylist(target_duration=2.0, window=2, start_seq=10)
    playlist.mark_discontinuity()  # nothing before it: no tag
    playlist.add(2.0)
    playlist.mark_discontinuity()
    playlist.add(2.5, "11.ts")
    assert playlist.render() == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:10\n"
        "#EXTINF:2.000,\n10.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.500,\n11.ts\n"
    )
    playlist.add(2.0)
    playlist.add(2.0)
    assert playlist.render() == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:12\n"
        "#EXT-X-DISCONTINUITY-SEQUENCE:1\n"
        "#EXTINF:2.000,\n12.ts\n#EXTINF:2.000,\n13.ts\n"
    )


def test_vod_after_end_lists_everything() -> None:
    playlist = MediaPlaylist(target_duration=2.0, window=1)
    playlist.add(2.0)
    playlist.mark_discontinuity()
    playlist.add(1.2)
    playlist.end()
    text = playlist.render()
    assert text == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXTINF:2.000,\n0.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.200,\n1.ts\n"
        "#EXT-X-ENDLIST\n"
    )
    parsed = m3u8.loads(text)
    assert parsed.is_endlist and parsed.playlist_type == "vod"
    assert [s.uri for s in parsed.segments] == ["0.ts", "1.ts"]
    assert [s.discontinuity for s in parsed.segments] == [False, True]
    with pytest.raises(ValueError, match="playlist has ended"):
        playlist.add(2.0)


def test_parse_round_trip() -> None:
    playlist = MediaPlaylist(target_duration=2.0, window=2, start_seq=4)
    for _ in range(3):
        playlist.add(2.0)
    playlist.mark_discontinuity()
    playlist.add(1.5)
    again = MediaPlaylist.parse(playlist.render(), window=2)
    assert again.render() == playlist.render()
    assert again.next_seq == 8
    with pytest.raises(ValueError, match="not an HLS playlist: missing #EXTM3U"):
        MediaPlaylist.parse("hello")
    with pytest.raises(ValueError, match="bad playlist line 3: could not convert string to float"):
        MediaPlaylist.parse("#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:abc,\n0.ts\n")


def test_bad_durations() -> None:
    playlist = MediaPlaylist()
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="segment duration must be positive"):
            playlist.add(bad)


def test_master() -> None:
    text = render_master([
        Variant("source/index.m3u8", 3_200_000, "avc1.64001f,mp4a.40.2", 1280, 720, 2_900_000, 30.0),
        Variant("360p/index.m3u8", 1_088_000, "avc1.64001e,mp4a.40.2", 640, 360, None, 29.97),
    ])
    assert text == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=3200000,AVERAGE-BANDWIDTH=2900000,RESOLUTION=1280x720,'
        'CODECS="avc1.64001f,mp4a.40.2",FRAME-RATE=30.000\n'
        "source/index.m3u8\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=1088000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",FRAME-RATE=29.970\n'
        "360p/index.m3u8\n"
    )
    parsed = m3u8.loads(text)
    assert parsed.is_variant
    assert parsed.playlists[0].stream_info.resolution == (1280, 720)
    assert parsed.playlists[1].stream_info.codecs == "avc1.64001e,mp4a.40.2"
    with pytest.raises(ValueError, match="a master playlist needs at least one variant"):
        render_master([])


def test_codec_strings() -> None:
    record = bytes([1, 0x64, 0x00, 0x1F, 0xFF, 0xE1])
    assert codecs.avc_from_avcc(record) == "avc1.64001f"
    with pytest.raises(ValueError, match="AVCDecoderConfigurationRecord is truncated or has a bad version"):
        codecs.avc_from_avcc(b"\x00\x01")
    sps = bytes([0x67, 0x4D, 0x40, 0x1E, 0xAA])
    assert codecs.avc_from_annexb(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01" + sps) == "avc1.4d401e"
    assert codecs.avc_from_packet(len(sps).to_bytes(4, "big") + sps) == "avc1.4d401e"
    assert codecs.avc_from_packet(b"\x00\x00\x00\x02\x65\x88") is None
    assert codecs.aac_from_asc(bytes([0x12, 0x10])) == "mp4a.40.2"
    assert codecs.aac_from_asc(bytes([0x2B, 0x92])) == "mp4a.40.5"
    with pytest.raises(ValueError, match="AudioSpecificConfig is truncated"):
        codecs.aac_from_asc(b"\x12")


# --- Low-Latency HLS -----------------------------------------------------------

def ll_playlist(segments: int, parts_per_segment: int = 4, window: int = 6) -> MediaPlaylist:
    playlist = MediaPlaylist(target_duration=2.0, window=window, part_target=0.5)
    playlist.map_uri = "init0.mp4"
    for seq in range(segments):
        for index in range(parts_per_segment):
            playlist.add_part(0.5, f"s{seq}.p{index}.m4s", independent=index == 0)
        playlist.add(0.5 * parts_per_segment, f"s{seq}.m4s")
    return playlist


def test_ll_playlist_lists_parts_of_the_last_segments_and_of_the_one_being_built():
    from ingest.hls.playlist import RenditionReport

    playlist = ll_playlist(5)
    playlist.add_part(0.5, "s5.p0.m4s", independent=True)
    text = playlist.render("s5.p1.m4s", [RenditionReport("../360p/index.m3u8", 5, 0)])
    lines = text.splitlines()
    assert lines[:6] == ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:2",
                         "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500",
                         "#EXT-X-PART-INF:PART-TARGET=0.500", "#EXT-X-MEDIA-SEQUENCE:0"]
    assert lines[6] == '#EXT-X-MAP:URI="init0.mp4"'
    # parts of the last three complete segments only, then the open segment's parts and the hint
    assert not any('URI="s1.p' in line for line in lines)
    assert '#EXT-X-PART:DURATION=0.500,URI="s2.p0.m4s",INDEPENDENT=YES' in lines
    assert '#EXT-X-PART:DURATION=0.500,URI="s2.p1.m4s"' in lines
    assert lines[-3:] == ['#EXT-X-PART:DURATION=0.500,URI="s5.p0.m4s",INDEPENDENT=YES',
                          '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="s5.p1.m4s"',
                          '#EXT-X-RENDITION-REPORT:URI="../360p/index.m3u8",LAST-MSN=5,LAST-PART=0']
    assert playlist.last_msn == 4 and playlist.last_part == (5, 0)


def test_ll_playlist_ended_is_plain_vod_without_parts():
    playlist = ll_playlist(3)
    playlist.add_part(0.5, "s3.p0.m4s", independent=True)
    playlist.drop_parts()
    playlist.end()
    text = playlist.render("s3.p0.m4s")
    assert "#EXT-X-PART" not in text and "PRELOAD-HINT" not in text and "SERVER-CONTROL" not in text
    assert text.endswith("#EXT-X-ENDLIST\n") and '#EXT-X-MAP:URI="init0.mp4"' in text
    again = MediaPlaylist.parse(text)
    assert [s.uri for s in again.segments] == ["s0.m4s", "s1.m4s", "s2.m4s"]
    assert all(s.map_uri == "init0.mp4" for s in again.segments)


def test_ll_discontinuity_and_new_init_section_come_before_the_next_parts():
    playlist = ll_playlist(2)
    playlist.mark_discontinuity()
    playlist.map_uri = "init2.mp4"
    playlist.add_part(0.5, "s2.p0.m4s", independent=True)
    lines = playlist.render().splitlines()
    at = lines.index('#EXT-X-PART:DURATION=0.500,URI="s2.p0.m4s",INDEPENDENT=YES')
    assert lines[at - 2:at] == ["#EXT-X-DISCONTINUITY", '#EXT-X-MAP:URI="init2.mp4"']
    playlist.add(0.5, "s2.m4s")
    lines = playlist.render().splitlines()
    assert lines.count("#EXT-X-DISCONTINUITY") == 1 and lines.count('#EXT-X-MAP:URI="init2.mp4"') == 1


def test_parts_need_a_low_latency_playlist_and_sane_durations():
    plain = MediaPlaylist(target_duration=2.0)
    with pytest.raises(ValueError, match="low-latency"):
        plain.add_part(0.5, "s0.p0.m4s", True)
    playlist = MediaPlaylist(target_duration=2.0, part_target=0.5)
    with pytest.raises(ValueError, match="positive"):
        playlist.add_part(0.0, "s0.p0.m4s", True)
    with pytest.raises(ValueError, match="part target"):
        MediaPlaylist(target_duration=2.0, part_target=3.0)


def test_master_with_a_shared_audio_rendition():
    from ingest.hls.playlist import AudioRendition

    text = render_master([Variant("720p/index.m3u8", 3_000_000, "avc1.64001f,mp4a.40.2", 1280, 720)],
                         AudioRendition("audio/index.m3u8", channels=2))
    assert ('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="default",DEFAULT=YES,AUTOSELECT=YES,'
            'CHANNELS="2",URI="audio/index.m3u8"') in text
    assert 'CODECS="avc1.64001f,mp4a.40.2",AUDIO="audio"' in text
