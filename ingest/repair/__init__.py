"""The media repair stage: every unit from a publisher passes it before any muxer or decoder.

Real encoders send timestamps and flags that libavformat's muxers refuse or that
break the transcoder (seen from GStreamer's flvmux under load: duplicate
decoding times, B-frames without their composition offsets, non-IDR frames
flagged as keyframes).  :class:`MediaRepair` turns one publish's units into a
stream the worker can always take, the way ffmpeg's muxing front end and
``-fflags +genpts`` would, and says what it repaired:

- :mod:`.clock` — one continuous millisecond timeline from 0: 32-bit wrap,
  jumps, strictly increasing decoding times per track;
- :mod:`.reorder` — presentation times from the picture order count when the
  stream has B-frames;
- :mod:`.video` — what the H.264 bitstream says: IDR or not, in-band
  parameter sets, picture order;
- :mod:`.stage` — the three put together, on :class:`~ingest.media.MediaUnit`.
"""

from ingest.repair.kinds import Repair, RepairKind
from ingest.repair.stage import MediaRepair

__all__ = ["MediaRepair", "Repair", "RepairKind"]
