"""onair installed the normal way: its wheel ``pip install``-ed (not editable) into a fresh
virtualenv, ``onair serve`` started from another directory.  The pages and static files
(``player-demo/``, installed as ``broadcaster/player_demo``, hls.js included) are package data, so the node serves them
from the install, not from a source tree.

The wheel is built once per session.  To keep the test short, the fresh virtualenv gets
onair with ``--no-deps`` and sees the dependencies of the test's own environment through a
``.pth`` line written after the install (the editable checkout of that environment stays
invisible: ``.pth`` files of an added directory are not processed); the test checks that
``broadcaster`` is imported from the fresh install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.support.node import ADMIN_TOKEN, NodeProcess

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the onair wheel installed (its root)."""
    # From a copy of the checkout without build leftovers: a stale build/ would hide missing package data.
    source = tmp_path_factory.mktemp("source") / "onair"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache", ".mypy_cache",
        ".ruff_cache", "data", "*.so"))
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
                   check=True, timeout=300, cwd=wheels)
    (wheel,) = wheels.glob("onair-*.whl")
    root = tmp_path_factory.mktemp("venv") / "fresh"
    venv.create(root, with_pip=False, symlinks=True)
    python = root / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=300)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "_onair_test_deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    return root


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def test_the_installed_package_holds_the_pages(installed: Path, tmp_path: Path) -> None:
    code = ("import broadcaster, broadcaster.pages as p; "
            "print(broadcaster.__file__); print((p.PAGES_DIR / 'vendor' / 'hls.min.js').is_file())")
    out = subprocess.run([str(installed / "bin" / "python"), "-c", code], check=True, capture_output=True,
                         text=True, cwd=tmp_path, env=_clean_env()).stdout.split()
    assert Path(out[0]).is_relative_to(installed), f"broadcaster imported from {out[0]}, not the fresh install"
    assert out[1] == "True"


def test_onair_serve_from_another_directory_serves_the_pages(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    node = NodeProcess(tmp_path / "data", command=[str(installed / "bin" / "onair")], cwd=elsewhere,
                       env=_clean_env())
    node.start()
    try:
        broadcast = node.create_broadcast("installed")

        def get(path: str) -> tuple[int, str, bytes]:
            with urllib.request.urlopen(node.base + path, timeout=10) as response:  # follows the / redirect
                return response.status, response.headers.get("Content-Type", ""), response.read()

        status, kind, body = get("/")
        assert status == 200 and kind.startswith("text/html") and b"<html" in body.lower()
        status, kind, body = get(f"/watch/{broadcast['id']}")
        assert status == 200 and kind.startswith("text/html") and b"watch.js" in body
        status, kind, body = get("/static/vendor/hls.min.js")
        assert status == 200 and "javascript" in kind
        assert body == (REPO / "player-demo" / "vendor" / "hls.min.js").read_bytes()
    finally:
        node.stop()
    assert ADMIN_TOKEN not in node.log()
