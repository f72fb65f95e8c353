"""What a node keeps about one recording: ``<data_dir>/recordings/<id>/recording.json`` (0600, written
atomically), next to ``recording.mp4`` and ``poster.jpg``.  A deleted recording keeps only this file,
saying when and why (so the API answers ``deleted`` rather than not knowing it)."""

from __future__ import annotations

import enum
import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

log = logging.getLogger("onair.recordings")

META = "recording.json"
MP4 = "recording.mp4"
POSTER = "poster.jpg"


class RecordingStatus(str, enum.Enum):
    #: live, or ended and being made into an MP4
    RECORDING = "recording"
    READY = "ready"
    DELETED = "deleted"
    #: the replay could not be made into an MP4 (``error`` says why; the HLS replay stays)
    FAILED = "failed"


@dataclass(frozen=True)
class RecordingMeta:
    status: RecordingStatus = RecordingStatus.RECORDING
    duration: float | None = None
    size: int | None = None
    rendition: str | None = None
    #: epoch seconds: the replay was found ended / the MP4 was written / the recording deleted
    ended_at: float | None = None
    made_at: float | None = None
    deleted_at: float | None = None
    deleted_by: str | None = None
    #: this broadcast's retention in days (None: the node's ``--retention-days``)
    retention_days: float | None = None
    error: str | None = None
    #: object storage: ``pending``/``uploading``/``uploaded``/``failed`` (None: kept locally only)
    upload: str | None = None
    upload_attempts: int = 0
    upload_error: str | None = None
    object_etag: str | None = None
    #: epoch seconds the local copy may be removed (after the upload, a grace)
    local_until: float | None = None
    local_removed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        doc = asdict(self)
        doc["status"] = self.status.value
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> "RecordingMeta":
        doc = json.loads(raw)
        known = {f.name for f in fields(cls)}
        doc = {k: v for k, v in doc.items() if k in known}
        doc["status"] = RecordingStatus(doc.get("status", "recording"))
        return cls(**doc)

    def with_(self, **changes: Any) -> "RecordingMeta":
        return replace(self, **changes)


def load(directory: Path) -> RecordingMeta | None:
    try:
        return RecordingMeta.from_json((directory / META).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        log.warning("%s is unreadable (%s): the recording is made again", directory / META, exc)
        return None


def save(directory: Path, meta: RecordingMeta) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = directory / f".{META}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, meta.to_json().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / META)


__all__ = ["META", "MP4", "POSTER", "RecordingMeta", "RecordingStatus", "load", "save"]
