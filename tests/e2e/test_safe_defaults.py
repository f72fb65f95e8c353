"""Issue 13 §5: what a fresh deployment leaves on disk, and what compose asks for."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.broadcaster.chat_support import connect
from tests.conftest import require_tool
from tests.support.node import NodeProcess
from tests.support.publish import ffmpeg_publish

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


async def test_a_fresh_data_dir_and_everything_in_it_is_private(tmp_path: Path, ffmpeg: str) -> None:
    data_dir = tmp_path / "fresh" / "data"
    node = NodeProcess(data_dir, log_path=tmp_path / "node.log")
    node.start()  # the node creates the data dir
    try:
        b = node.create_broadcast("private")
        publisher = ffmpeg_publish(node.rtmp_url(b["stream_key"]), seconds=3)  # HLS output and its journal
        node.wait_status(b["id"], "live", timeout=15)
        async with aiohttp.ClientSession() as session:  # a comment held for review: chat-held.json
            author = await connect(f"{node.ws_base}/ws/{b['id']}", session, name="author")
            await author.comment("nobody wants you here, idiot")
            assert (await author.expect("error", code="held_for_review"))["code"] == "held_for_review"
            await author.ws.close()
        assert publisher.wait(timeout=30) == 0
        node.wait_status(b["id"], "reconnecting", timeout=10)
        assert node.request("POST", f"/api/broadcasts/{b['id']}/end")[0] == 200
    finally:
        assert node.stop() == 0
    names = {p.name for p in data_dir.rglob("*")}
    for expected in ("onair.db", "moderation.db", "chat-held.json", "chat-secret", "node-id", "master.m3u8",
                     "index.m3u8", "segments.jsonl", "s0.m4s"):
        assert expected in names, expected
    loose = [(str(p.relative_to(data_dir)), oct(stat.S_IMODE(p.stat().st_mode)))
             for p in [data_dir, *data_dir.rglob("*")]
             if stat.S_IMODE(p.stat().st_mode) != (0o700 if p.is_dir() else 0o600)]
    assert loose == []


def _compose_config(workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ONAIR_ADMIN_TOKEN"}
    return subprocess.run([require_tool("docker-compose"), "config"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=60)


def test_compose_has_no_default_token_and_a_durable_redis(tmp_path: Path) -> None:
    shutil.copy(REPO / "docker-compose.yml", tmp_path)
    assert "change-me" not in (REPO / "docker-compose.yml").read_text()
    refused = _compose_config(tmp_path)
    assert refused.returncode != 0
    assert "set ONAIR_ADMIN_TOKEN in .env" in refused.stderr
    token = "Zr8pQ2vX9mT4kW7bN1cJ5hF3sD6gL0yE"
    (tmp_path / ".env").write_text(f"ONAIR_ADMIN_TOKEN={token}\n")
    accepted = _compose_config(tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert f"ONAIR_ADMIN_TOKEN: {token}" in accepted.stdout
    redis = accepted.stdout.split("\n  redis:\n", 1)[1]  # the redis service
    assert re.search(r"- --appendonly\s*\n\s*- [\"']?yes", redis), accepted.stdout
    assert "redis-data:/data" in redis
    assert (REPO / ".env.example").is_file()
