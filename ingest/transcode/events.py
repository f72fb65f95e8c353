"""Typed events a transcode worker reports to the node (one JSON object per line on its stdout), and their writer.

Each event is a frozen dataclass with ``to_json`` (the dict the worker writes)
and ``from_json`` (the node's reading, which raises :class:`ValueError` on a
malformed event).  The worker's older events (``started``, ``init``, ``part``,
``segment``, ``stats``, ``error``) are still dict literals in ``worker.py`` and
``pipeline.py``; new events go here, and the others can follow.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, ClassVar

#: where in the worker a packet failed
STAGES = ("decode", "encode", "mux")


@dataclass(frozen=True)
class PacketDropped:
    """A libav error on one packet: the packet was dropped (video: up to the next keyframe) and the
    worker went on.  Only a run of failures on one writer ends the worker."""

    NAME: ClassVar[str] = "packet_dropped"

    #: the rendition whose writer or encoder failed ("source", "360p", "audio"), or "decoder"
    rendition: str
    stage: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"event": self.NAME, "rendition": self.rendition, "stage": self.stage, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PacketDropped:
        rendition, stage, message = data.get("rendition"), data.get("stage"), data.get("message")
        if not isinstance(rendition, str) or not isinstance(message, str) or stage not in STAGES:
            raise ValueError(f"malformed {cls.NAME} event")
        return cls(rendition, str(stage), message[:500])


class Events:
    """Thread-safe JSON-lines writer for the parent process (the worker's stdout)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def report(self, event: PacketDropped) -> None:
        self.emit(event.to_json())

    def emit(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
