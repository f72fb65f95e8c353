"""The node's data directory: private (0700) with private files (0600), written atomically and durably.

Everything under it is the node's alone: SQLite databases (stream keys,
hashed host and moderator tokens, bans, the audit log), the admin token, the
chat secret, held comments, the node id and the HLS output (the node serves
that itself).  ``onair serve`` also sets the process umask to 077, so files
made by libraries and workers (SQLite's WAL, segments) are private too.

- :func:`prepare` creates the directory 0700 (and says so if an existing one is
  readable by others);
- :func:`private_file` creates an empty 0600 file before a library opens it
  (SQLite gives its ``-wal``/``-shm`` files the database file's mode);
- :func:`write_private` writes a file atomically (temp file, fsync, rename,
  fsync of the directory): a crash leaves the old content or the new, never half;
- :func:`read_json` reads a JSON file; a damaged one is moved aside with a log
  line and the caller starts without it, rather than the node refusing to start;
- :func:`node_id` is this node's name, kept in ``node-id`` so it survives restarts
  (its leases and live broadcasts are found again after a crash).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("onair.datadir")

NODE_ID_FILE = "node-id"


def prepare(data_dir: Path) -> None:
    """Create ``data_dir`` (and missing parents) private; warn if an existing one is open to others."""
    if not data_dir.is_dir():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)  # mkdir's mode is filtered by the umask
        return
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        log.warning("data dir %s is accessible to other users (mode %o): it holds stream keys and tokens; "
                    "chmod 700 it", data_dir, mode)


def private_file(path: Path) -> None:
    """Make sure ``path`` exists; a file created here is 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (0600) atomically and durably."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_json(path: Path, what: str) -> Any:
    """The JSON document in ``path`` (None if there is none).  A damaged file is renamed
    ``<name>.damaged-<unix time>`` with an error in the log, and None is returned."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        os.replace(path, aside)
        log.error("%s in %s is damaged (%s): moved to %s, starting without it", what, path, exc, aside.name)
        return None


def node_id(data_dir: Path, configured: str = "") -> str:
    """``configured`` if set; otherwise the id kept in ``data_dir/node-id``, created once."""
    if configured:
        return configured
    path = data_dir / NODE_ID_FILE
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = ""
    if kept:
        return kept
    new = "node-" + secrets.token_hex(4)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, (new + "\n").encode())
    log.info("node id %s (kept in %s)", new, path)
    return new


__all__ = ["NODE_ID_FILE", "node_id", "prepare", "private_file", "read_json", "write_private"]
