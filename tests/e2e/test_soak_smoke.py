"""``benchmarks/soak.py`` runs end to end (a few seconds of it): the long run must not fail at its end."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_soak_samples_the_node_and_summarises(ffmpeg: str, tmp_path: Path) -> None:
    out = tmp_path / "soak.csv"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--minutes", "0.1", "--viewers", "10",
                           "--pollers", "2", "--addresses", "2", "--sample", "2", "--ladder", "source",
                           "--csv", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) >= 3
    last = rows[-1]
    assert int(last["rss_kib"]) > 10_000 and int(last["fds"]) > 10
    assert int(last["chat_rooms"]) == 1 and int(last["live_sessions"]) == 1
    assert last["status"] == "live"
    assert int(last["joins"]) >= 1 and int(last["reloads"]) >= 1
    assert "worst of node RSS and fds:" in proc.stdout
