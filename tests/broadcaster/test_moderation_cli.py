"""`onair moderate --broadcast ID`: verdicts with that broadcast's stored settings (SQLite and Redis)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.broadcaster.moderation_support import mod_nodes  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def moderate(args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "broadcaster.moderate_cmd", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def _configure(node, settings: dict) -> str:
    b = node.create_broadcast("cli")
    status, doc = node.request("PUT", f"/api/broadcasts/{b['id']}/moderation/settings", settings, token=b["host_token"])
    assert status == 200, doc
    return b["id"]


def test_moderate_reads_the_broadcasts_stored_settings(mod_nodes, tmp_path) -> None:  # noqa: F811
    node = mod_nodes(data_dir=tmp_path / "n")
    bid = _configure(node, {"blocked_terms": ["zap*"], "strictness": "off"})
    r = moderate(["--broadcast", bid, "--data-dir", str(tmp_path / "n")], "zapping\ngo kill yourself\nhello\n")
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["verdict"] for x in r.stdout.splitlines()] == ["reject", "publish", "publish"]
    # options still override the stored settings
    r = moderate(["--broadcast", bid, "--data-dir", str(tmp_path / "n"), "--level", "medium"], "go kill yourself\n")
    assert json.loads(r.stdout)["verdict"] == "reject"
    r = moderate(["--broadcast", "nope", "--data-dir", str(tmp_path / "n")], "")
    assert r.returncode == 2 and r.stderr.strip() == "onair moderate: no broadcast 'nope'"
    r = moderate(["--data-dir", str(tmp_path / "n")], "")
    assert r.returncode == 2 and r.stderr.strip() == "onair moderate: --config/--data-dir/--redis-url need --broadcast"
    # without --broadcast it is the plain moderation CLI
    r = moderate([], "hello\n")
    out = json.loads(r.stdout)
    assert {k: out[k] for k in ("verdict", "text", "filter", "reason", "score")} == \
        {"verdict": "publish", "text": "hello", "filter": None, "reason": None, "score": None}


def test_moderate_with_redis(mod_nodes, redis_url: str) -> None:  # noqa: F811
    node = mod_nodes(redis_url=redis_url)
    bid = _configure(node, {"blocked_terms": ["zap*"]})
    r = moderate(["--broadcast", bid, "--redis-url", redis_url], "zapping\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["reason"] == "blocked_term"
