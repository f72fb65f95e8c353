"""What an H.264 access unit really is, read from its bitstream (pure).

The container says "keyframe" with a flag; GStreamer's flvmux sets it on
non-IDR I-frames too, and a segment cut there does not start with a picture a
player can begin with.  :class:`VideoInspector` keeps the parameter sets (from
the configuration record and in-band), and reads each access unit's NAL units:
whether it holds an IDR picture, its picture order count, and whether in-band
parameter sets describe another picture (a resolution change an encoder made
without a new sequence header), in which case it builds the configuration
record that now applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest import avc


@dataclass(frozen=True)
class Inspection:
    idr: bool
    #: picture order count of the access unit's first slice; None where not known (no SPS/PPS,
    #: a field picture, picture order type 1 or 2)
    poc: int | None
    #: the SPS the access unit's slices use (None before any is known)
    sps: avc.Sps | None
    #: a configuration record to switch to before this unit (its in-band SPS describes another picture)
    new_config: bytes | None = None


class VideoInspector:
    def __init__(self) -> None:
        self.length_size = 4
        self._sps: dict[int, avc.Sps] = {}
        self._pps: dict[int, avc.Pps] = {}
        self._sps_nal: dict[int, bytes] = {}
        self._pps_nal: dict[int, bytes] = {}
        self._poc = avc.PocCounter()
        self.active: avc.Sps | None = None

    def configure(self, record: bytes) -> avc.Sps | None:
        """A configuration record (sequence header); returns its SPS.  ValueError if unreadable."""
        config = avc.parse_decoder_config(record)
        self.length_size = config.length_size
        for nal in config.sps:
            self._store_sps(nal)
        for nal in config.pps:
            self._store_pps(nal)
        self.active = avc.parse_sps(config.sps[0]) if config.sps else None
        return self.active

    def inspect(self, data: bytes) -> Inspection:
        """One access unit (AVCC).  ValueError if its NAL framing is broken."""
        nals = avc.split_avcc(data, self.length_size)
        idr = False
        first_slice: bytes | None = None
        new_sps: bytes | None = None
        for nal in nals:
            kind = avc.nal_type(nal)
            if kind == avc.NAL_SPS:
                sps = self._store_sps(nal)
                if sps is not None and self.active is not None and sps.shape != self.active.shape:
                    new_sps = nal
            elif kind == avc.NAL_PPS:
                self._store_pps(nal)
            elif kind in (avc.NAL_SLICE, avc.NAL_IDR):
                idr = idr or kind == avc.NAL_IDR
                if first_slice is None:
                    first_slice = nal
        new_config = None
        if new_sps is not None:
            new_config = self._config_for(new_sps)
        poc: int | None = None
        sps = self.active
        if first_slice is not None:
            try:
                header = avc.parse_slice_header(first_slice, self._sps, self._pps)
            except ValueError:
                header = None
            if header is not None:
                sps = header.sps
                poc = self._poc.next(header)
        return Inspection(idr, poc, sps, new_config)

    def _config_for(self, sps_nal: bytes) -> bytes | None:
        sps = avc.parse_sps(sps_nal)
        pps = next((nal for pps_id, nal in self._pps_nal.items() if self._pps[pps_id].sps_id == sps.sps_id), None)
        if pps is None:
            return None
        self.active = sps
        return avc.avc_decoder_config(sps_nal, pps, self.length_size)

    def _store_sps(self, nal: bytes) -> avc.Sps | None:
        try:
            sps = avc.parse_sps(nal)
        except ValueError:
            return None
        self._sps[sps.sps_id] = sps
        self._sps_nal[sps.sps_id] = nal
        return sps

    def _store_pps(self, nal: bytes) -> None:
        try:
            pps = avc.parse_pps(nal)
        except ValueError:
            return
        self._pps[pps.pps_id] = pps
        self._pps_nal[pps.pps_id] = nal
