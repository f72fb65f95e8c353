"""Shared measuring helpers for the benchmarks: CPU of a process tree from /proc, medians."""

from __future__ import annotations

import os
import socket
import statistics
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces: split after the closing parenthesis
    return raw[raw.rindex(")") + 2:].split()


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """utime+stime of ``pid``, its live descendants, and the children it has already reaped."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # after the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    total = sum(int(v) for v in fields[11:15]) / CLK_TCK
    for child in children(pid):
        total += tree_cpu_seconds(child)
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"


def own_cpu_seconds(pid: int) -> float:
    """utime+stime of ``pid`` alone (not its children)."""
    return sum(own_user_system_seconds(pid))


def own_user_system_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of ``pid`` alone: user space and kernel."""
    fields = _stat(pid)
    return (0.0, 0.0) if fields is None else (int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK)
