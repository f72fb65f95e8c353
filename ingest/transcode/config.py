"""A transcode worker's configuration: what the node passes it (one JSON argument) and how it reads it.

The node builds a :class:`WorkerConfig` (``ingest.hls.packager``: the renditions
pinned by the first worker, each numbering continued) and passes
``to_json()`` on the worker's command line; the worker reads it back with
``from_json``, which raises :class:`ConfigError` on anything it cannot use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ingest.transcode.ladder import Rendition


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class WorkerConfig:
    out_dir: Path
    renditions: list[Rendition]
    segment_target: float = 2.0
    start_seq: dict[str, int] = field(default_factory=dict)
    #: True: produce exactly ``renditions`` (a restart keeps its master playlist);
    #: False: trim them to the source with ``select_for_source``.
    pinned: bool = False
    #: LL-HLS: CMAF parts of ``part_target`` seconds, audio as its own rendition
    low_latency: bool = False
    part_target: float = 0.5

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"worker config is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("worker config must be a JSON object")
        try:
            out_dir = Path(data["out_dir"])
            renditions = [Rendition.from_dict(r) for r in data["renditions"]]
            target = float(data.get("segment_target", 2.0))
            start_seq = {str(k): int(v) for k, v in dict(data.get("start_seq") or {}).items()}
            pinned = bool(data.get("pinned", False))
            low_latency = bool(data.get("low_latency", False))
            part_target = float(data.get("part_target", 0.5))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad worker config: {exc!r}") from None
        if not renditions:
            raise ConfigError("worker config has no renditions")
        if not 0.1 <= target <= 60:
            raise ConfigError("segment_target must be between 0.1 and 60 seconds")
        if low_latency and not 0.05 <= part_target <= target / 2:
            raise ConfigError("part_target must be between 0.05 s and half the segment target")
        return cls(out_dir, renditions, target, start_seq, pinned, low_latency, part_target)

    def to_json(self) -> str:
        return json.dumps({
            "out_dir": str(self.out_dir),
            "renditions": [r.to_dict() for r in self.renditions],
            "segment_target": self.segment_target,
            "start_seq": self.start_seq,
            "pinned": self.pinned,
            "low_latency": self.low_latency,
            "part_target": self.part_target,
        })
