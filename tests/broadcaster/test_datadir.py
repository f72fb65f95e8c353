"""The data dir: private on creation, files 0600 written atomically, damaged files set aside, a lasting node id."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broadcaster import datadir


def test_a_fresh_data_dir_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        datadir.prepare(tmp_path / "a" / "data")
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "data").stat().st_mode & 0o777 == 0o700


def test_an_open_data_dir_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tmp_path.chmod(0o755)
    datadir.prepare(tmp_path)
    assert "accessible to other users (mode 755)" in caplog.text
    assert tmp_path.stat().st_mode & 0o777 == 0o755  # the operator's choice is not changed behind their back


def test_private_writes_replace_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "f"
    datadir.write_private(path, b"one")
    datadir.write_private(path, b"two")
    assert path.read_bytes() == b"two" and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    datadir.private_file(tmp_path / "db")
    datadir.private_file(tmp_path / "db")  # already there: kept
    assert (tmp_path / "db").stat().st_mode & 0o777 == 0o600


def test_read_json_sets_a_damaged_file_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert datadir.read_json(tmp_path / "missing.json", "things") is None
    (tmp_path / "good.json").write_text('{"a": 1}')
    assert datadir.read_json(tmp_path / "good.json", "things") == {"a": 1}
    (tmp_path / "bad.json").write_text('{"a": ')
    assert datadir.read_json(tmp_path / "bad.json", "things") is None
    assert not (tmp_path / "bad.json").exists()
    assert len(list(tmp_path.glob("bad.json.damaged-*"))) == 1
    assert "things in" in caplog.text and "is damaged" in caplog.text


def test_the_node_id_survives_restarts(tmp_path: Path) -> None:
    first = datadir.node_id(tmp_path)
    assert first.startswith("node-") and datadir.node_id(tmp_path) == first
    assert (tmp_path / "node-id").stat().st_mode & 0o777 == 0o600
    assert datadir.node_id(tmp_path, "configured") == "configured"
