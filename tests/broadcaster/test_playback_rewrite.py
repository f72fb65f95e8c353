"""Playlists as a granted viewer gets them: grants on playlist URIs, signatures on object URIs."""

from __future__ import annotations

import m3u8

from broadcaster.playback.rewrite import fill, master_template, sign_objects
from ingest.hls.playlist import AudioRendition, MediaPlaylist, RenditionReport, Variant, render_master

GRANT = "pg1.abc-_.def"


def test_master_playlist_uris_get_the_grant():
    text = render_master([Variant("source/index.m3u8", 3_000_000, "avc1.64001f,mp4a.40.2", 1280, 720),
                          Variant("360p/index.m3u8", 900_000, "avc1.64001e,mp4a.40.2", 640, 360)],
                         AudioRendition("audio/index.m3u8"))
    out = fill(master_template(text, "grant"), GRANT)
    parsed = m3u8.loads(out)
    assert [p.uri for p in parsed.playlists] == [f"source/index.m3u8?grant={GRANT}", f"360p/index.m3u8?grant={GRANT}"]
    assert [m.uri for m in parsed.media] == [f"audio/index.m3u8?grant={GRANT}"]
    # nothing else changed
    assert out.replace(f"?grant={GRANT}", "") == text


def live_playlist() -> str:
    playlist = MediaPlaylist(target_duration=2.0, window=6, part_target=0.5)
    playlist.map_uri = "init0.mp4"
    for msn in range(3):
        for index in range(4):
            playlist.add_part(0.5, f"s{msn}.p{index}.m4s", independent=index == 0)
        playlist.add(2.0, f"s{msn}.m4s")
    playlist.add_part(0.5, "s3.p0.m4s", independent=True)
    return playlist.render("s3.p1.m4s", [RenditionReport("../360p/index.m3u8", 2, 0)])


def test_every_fetched_object_uri_is_signed_and_rendition_reports_are_left_alone():
    text = live_playlist()
    seen: list[str] = []

    def signature(uri: str) -> str:
        seen.append(uri)
        return f"sig-{uri}"

    out = sign_objects(text, signature, "s")
    parsed = m3u8.loads(out)
    assert parsed.segments[0].init_section.uri == "init0.mp4?s=sig-init0.mp4"
    # (m3u8 lists the parts of the segment being built as a segment without a URI)
    assert [s.uri for s in parsed.segments if s.uri] == [f"s{n}.m4s?s=sig-s{n}.m4s" for n in range(3)]
    parts = [p.uri for s in parsed.segments for p in s.parts]
    assert len(parts) == 13 and all(uri.endswith("?s=sig-" + uri.split("?")[0]) for uri in parts)
    assert '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="s3.p1.m4s?s=sig-s3.p1.m4s"' in out
    assert '#EXT-X-RENDITION-REPORT:URI="../360p/index.m3u8",LAST-MSN=2,LAST-PART=0' in out
    assert "../360p/index.m3u8" not in seen
    # 1 map + 12 + 1 parts + 3 segments + 1 hint
    assert len(seen) == 18
    assert out.count("\n") == text.count("\n")


def test_a_replay_playlist_is_signed_too():
    playlist = MediaPlaylist(target_duration=2.0)
    for _ in range(3):
        playlist.add(2.0)
    playlist.end()
    out = sign_objects(playlist.render(), lambda uri: "x", "s")
    assert [s.uri for s in m3u8.loads(out).segments] == ["0.ts?s=x", "1.ts?s=x", "2.ts?s=x"]
    assert out.endswith("#EXT-X-ENDLIST\n")
