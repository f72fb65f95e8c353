"""The on-disk HLS layout: atomic playlist writes and reloading a broadcast's state."""

from pathlib import Path

import pytest

from ingest.hls.playlist import MediaPlaylist
from ingest.hls.store import HlsStore, broadcast_dir


def test_layout_and_reload(tmp_path: Path) -> None:
    store = HlsStore(broadcast_dir(tmp_path, "b1"))
    playlist = MediaPlaylist(window=2)
    playlist.add(2.0)
    playlist.add(2.0)
    store.write_media("720p", playlist)
    store.write_master("#EXTM3U\n")
    root = tmp_path / "hls" / "b1"
    assert (root / "720p" / "index.m3u8").read_text() == playlist.render()
    assert (root / "master.m3u8").read_text() == "#EXTM3U\n"
    assert sorted(p.name for p in root.rglob("*")) == ["720p", "index.m3u8", "master.m3u8"]  # no temp files left
    again = store.load_media("720p", window=2)
    assert again is not None and again.next_seq == 2
    assert store.load_media("360p") is None
    (root / "720p" / "index.m3u8").write_text("garbage")
    assert store.load_media("720p") is None


@pytest.mark.parametrize("bad", ["", "..", ".", "a/b", "x\x00"])
def test_bad_broadcast_ids(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="bad broadcast id"):
        broadcast_dir(tmp_path, bad)
