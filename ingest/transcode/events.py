"""What a transcode worker reports to the node: typed events, one JSON object per line on its stdout.

Every event is a frozen dataclass with a ``NAME`` (the line's ``"event"``),
``to_json`` (the dict the worker writes) and ``from_json`` (the node's
reading).  ``parse`` reads one line into its event and raises
:class:`ValueError` on anything malformed, so the node never reads a worker
line by string keys.  :class:`Events` is the worker's thread-safe writer.

- :class:`Started` — the renditions the worker produces (and the audio
  rendition in low latency), once, before any media
- :class:`Init` — a CMAF rendition's init segment was written
- :class:`Part` — a CMAF part was written (low latency)
- :class:`Segment` — a segment was completed
- :class:`Stats` — transcoding speed, every few seconds
- :class:`PacketDropped` — a libav error on one packet, which was dropped
- :class:`WorkerError` — why the worker is about to exit with an error
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, ClassVar, Union

#: where in the worker a packet failed
STAGES = ("decode", "encode", "mux")


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    return value


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key!r} must be a number")
    return int(value)


def _float(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key!r} must be a number")
    return float(value)


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    return _int(data, key) if data.get(key) is not None else None


def _optional_float(data: Mapping[str, Any], key: str) -> float | None:
    return _float(data, key) if data.get(key) is not None else None


@dataclass(frozen=True)
class StartedRendition:
    """One video rendition as the worker produces it (the master playlist's variant)."""

    name: str
    width: int
    height: int
    codecs: str
    #: bits per second the variant is expected to need (None: unknown until measured)
    bandwidth: int | None = None
    frame_rate: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "width": self.width, "height": self.height, "bandwidth": self.bandwidth,
                "codecs": self.codecs, "frame_rate": self.frame_rate}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StartedRendition:
        return cls(str(data["name"]), _int(data, "width"), _int(data, "height"), _str(data, "codecs"),
                   _optional_int(data, "bandwidth") or None, _optional_float(data, "frame_rate") or None)


@dataclass(frozen=True)
class StartedAudio:
    """The audio rendition of a low-latency worker."""

    codecs: str = "mp4a.40.2"
    bandwidth: int | None = None
    channels: int = 0
    name: str = "audio"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "codecs": self.codecs, "bandwidth": self.bandwidth, "channels": self.channels}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StartedAudio:
        return cls(str(data.get("codecs") or "mp4a.40.2"), _optional_int(data, "bandwidth") or None,
                   _optional_int(data, "channels") or 0)


@dataclass(frozen=True)
class Started:
    NAME: ClassVar[str] = "started"

    renditions: tuple[StartedRendition, ...]
    audio: StartedAudio | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.NAME, "renditions": [r.to_json() for r in self.renditions]}
        if self.audio is not None:
            out["audio"] = self.audio.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Started:
        renditions, audio = data.get("renditions"), data.get("audio")
        if not isinstance(renditions, list) or not all(isinstance(r, dict) for r in renditions):
            raise ValueError("'renditions' must be a list of objects")
        if audio is not None and not isinstance(audio, dict):
            raise ValueError("'audio' must be an object")
        return cls(tuple(StartedRendition.from_json(r) for r in renditions),
                   StartedAudio.from_json(audio) if audio is not None else None)


@dataclass(frozen=True)
class Init:
    NAME: ClassVar[str] = "init"

    rendition: str
    uri: str

    def to_json(self) -> dict[str, Any]:
        return {"event": self.NAME, "rendition": self.rendition, "uri": self.uri}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Init:
        return cls(_str(data, "rendition"), _str(data, "uri"))


@dataclass(frozen=True)
class Part:
    NAME: ClassVar[str] = "part"

    rendition: str
    seq: int
    index: int
    duration: float
    independent: bool
    size: int
    uri: str
    #: media time (ms) of the last frame in the part
    last_pts: int

    def to_json(self) -> dict[str, Any]:
        return {"event": self.NAME, "rendition": self.rendition, "seq": self.seq, "index": self.index,
                "duration": self.duration, "independent": self.independent, "bytes": self.size, "uri": self.uri,
                "last_pts": self.last_pts}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Part:
        return cls(_str(data, "rendition"), _int(data, "seq"), _int(data, "index"), _float(data, "duration"),
                   bool(data.get("independent")), _int(data, "bytes"), _str(data, "uri"), _int(data, "last_pts"))


@dataclass(frozen=True)
class Segment:
    NAME: ClassVar[str] = "segment"

    rendition: str
    seq: int
    duration: float
    size: int
    #: the segment's file name (None: ``<seq>.ts``)
    uri: str | None = None
    #: media time (ms) of its first frame
    first_pts: int | None = None
    #: parts it was written as (CMAF)
    parts: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.NAME, "rendition": self.rendition, "seq": self.seq,
                               "duration": self.duration, "bytes": self.size}
        if self.uri is not None:
            out["uri"] = self.uri
        if self.parts is not None:
            out["parts"] = self.parts
        out["first_pts"] = self.first_pts
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Segment:
        uri = data.get("uri")
        if uri is not None and not isinstance(uri, str):
            raise ValueError("'uri' must be a string")
        return cls(_str(data, "rendition"), _int(data, "seq"), _float(data, "duration"), _int(data, "bytes"), uri,
                   _optional_int(data, "first_pts"), _optional_int(data, "parts"))


@dataclass(frozen=True)
class Stats:
    NAME: ClassVar[str] = "stats"

    media_seconds: float
    wall_seconds: float
    realtime_factor: float | None = None
    fps: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"event": self.NAME, "media_seconds": self.media_seconds, "wall_seconds": self.wall_seconds,
                "realtime_factor": self.realtime_factor, "fps": self.fps}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Stats:
        return cls(_optional_float(data, "media_seconds") or 0.0, _optional_float(data, "wall_seconds") or 0.0,
                   _optional_float(data, "realtime_factor"), _optional_float(data, "fps"))


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


@dataclass(frozen=True)
class WorkerError:
    NAME: ClassVar[str] = "error"

    message: str

    def to_json(self) -> dict[str, Any]:
        return {"event": self.NAME, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkerError:
        return cls(str(data.get("message"))[:500])


WorkerEvent = Union[Started, Init, Part, Segment, Stats, PacketDropped, WorkerError]
_KINDS: dict[str, Any] = {kind.NAME: kind for kind in (Started, Init, Part, Segment, Stats, PacketDropped, WorkerError)}


def parse(line: bytes | str) -> WorkerEvent:
    """One line of a worker's stdout as its event; ``ValueError`` if it is not one."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("a worker event is a JSON object")
    kind = _KINDS.get(str(data.get("event")))
    if kind is None:
        raise ValueError(f"unknown event {data.get('event')!r}")
    try:
        event: WorkerEvent = kind.from_json(data)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed {kind.NAME} event: {exc!r}") from None
    return event


class Events:
    """Thread-safe JSON-lines writer for the parent process (the worker's stdout)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def report(self, event: WorkerEvent) -> None:
        line = json.dumps(event.to_json(), separators=(",", ":"))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
