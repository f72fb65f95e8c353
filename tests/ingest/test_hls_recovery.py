"""The segment journal: what a node that died needs to rebuild a rendition's full playlist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.hls.playlist import MediaPlaylist
from ingest.hls.recovery import JOURNAL, load_playlist, record
from ingest.hls.store import HlsStore, end_leftover_replays


def _live(path: Path, segments: int, window: int = 3, start: int = 0) -> MediaPlaylist:
    """A playlist as a live run builds it: each segment journaled, then the window written."""
    playlist = MediaPlaylist(2.0, window, start_seq=start)
    playlist.map_uri = f"init{start}.mp4"
    for i in range(segments):
        if i == 2:
            playlist.mark_discontinuity()
            playlist.map_uri = "init2.mp4"
        segment = playlist.add(2.0 + i / 10, f"s{start + i}.m4s", 1_700_000_000.0 + 2 * i)
        record(path, segment)
    (path / "index.m3u8").write_text(playlist.render())
    return playlist


def test_the_journal_rebuilds_every_segment_not_only_the_window(tmp_path: Path) -> None:
    written = _live(tmp_path, 6)
    recovered = load_playlist(tmp_path, 2.0, window=3)
    assert recovered is not None and recovered.segments == written.segments
    assert recovered.target_duration == 3 and not recovered.ended
    recovered.end()
    text = recovered.render()
    assert text.count("#EXTINF") == 6 and "#EXT-X-MEDIA-SEQUENCE:0" in text
    assert '#EXT-X-MAP:URI="init0.mp4"' in text and '#EXT-X-MAP:URI="init2.mp4"' in text
    assert (tmp_path / JOURNAL).stat().st_mode & 0o777 == 0o600


def test_an_ended_playlist_is_recovered_ended(tmp_path: Path) -> None:
    written = _live(tmp_path, 4)
    written.end()
    (tmp_path / "index.m3u8").write_text(written.render())
    recovered = load_playlist(tmp_path)
    assert recovered is not None and recovered.ended and len(recovered.segments) == 4


def test_a_torn_last_line_a_repeat_and_a_gap(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _live(tmp_path, 4)
    journal = tmp_path / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:3] + lines[2:3] + [lines[3][:17]]))  # segment 2 twice, 3 cut short
    recovered = load_playlist(tmp_path)
    assert recovered is not None and [s.seq for s in recovered.segments] == [0, 1, 2]
    assert "line 5 is damaged" in caplog.text
    gap = json.loads(lines[3])
    gap["seq"] = 7
    journal.write_bytes(b"".join(lines[:2]) + json.dumps(gap).encode() + b"\n")
    recovered = load_playlist(tmp_path)
    assert recovered is not None and [s.seq for s in recovered.segments] == [0, 1]
    assert "segment 7 follows 1" in caplog.text


def test_without_a_journal_the_playlist_on_disk_is_used(tmp_path: Path) -> None:
    _live(tmp_path, 5, start=10)
    (tmp_path / JOURNAL).unlink()
    recovered = load_playlist(tmp_path, window=3)
    assert recovered is not None and [s.seq for s in recovered.segments] == [12, 13, 14]  # the window it showed
    (tmp_path / "index.m3u8").write_text("not a playlist")
    assert load_playlist(tmp_path) is None
    assert load_playlist(tmp_path / "missing") is None


def test_playlists_left_live_are_ended_as_replays_unless_resumed(tmp_path: Path) -> None:
    for broadcast in ("gone", "resumed", "done"):
        (tmp_path / broadcast / "source").mkdir(parents=True)
        _live(tmp_path / broadcast / "source", 5)
    HlsStore(tmp_path / "done").end_leftovers()
    assert end_leftover_replays(tmp_path, keep={"resumed"}) == {"gone": ["source"]}
    replay = MediaPlaylist.parse((tmp_path / "gone" / "source" / "index.m3u8").read_text())
    assert replay.ended and [s.seq for s in replay.segments] == [0, 1, 2, 3, 4]
    assert not MediaPlaylist.parse((tmp_path / "resumed" / "source" / "index.m3u8").read_text()).ended
    assert end_leftover_replays(tmp_path, keep={"resumed"}) == {}
    assert end_leftover_replays(tmp_path / "missing", keep=set()) == {}
