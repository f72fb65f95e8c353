"""One publish's timestamps on one continuous millisecond timeline (pure).

RTMP/FLV timestamps are 32-bit milliseconds: they wrap after 49.7 days, and
some publishers start them high (an encoder's uptime, a timestamp offset), so
a wrap can come seconds into a broadcast.  Encoders also restart their clock
without reconnecting, or jump.  :class:`Timeline` maps every input timestamp to
a position on one timeline that starts at 0 with the publish's first unit:

- :meth:`Timeline.map` unwraps the 32-bit clock and follows jumps: a unit more
  than ``backward_jump_ms`` before its track's previous one, or more than
  ``forward_jump_ms`` after the newest unit of any track, starts a new clock
  segment that continues right after the previous unit (what ffmpeg does with
  ``-dts_delta_threshold`` on discontinuous formats).  The tracks of one
  publish share a clock: when the second track jumps by about as much as the
  first, it takes the same correction, so audio and video stay in sync.
- :meth:`Timeline.order` makes a track's decoding times strictly increasing
  (a duplicate or small step back moves to 1 ms after the previous one, as
  ffmpeg's muxing front end does for muxers without ``AVFMT_TS_NONSTRICT``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.repair.kinds import Repair, RepairKind

WRAP = 1 << 32
#: how long after one track's jump a matching jump of another track counts as the same jump (ms, timeline)
_JUMP_PAIRING = 5_000


@dataclass
class _Track:
    offset: int = 0
    last_in: int | None = None  # unwrapped input
    last_out: int | None = None  # mapped, before ordering
    last_dts: int | None = None  # ordered output
    step: int = 20  # last forward step seen (ms), how far after the previous unit a jump continues


@dataclass(frozen=True)
class _Jump:
    track: str
    delta_in: int  # the input step that was a jump
    shift: int  # the change of offset it caused
    at: int  # timeline position it continued at


class Timeline:
    def __init__(self, *, forward_jump_ms: int = 10_000, backward_jump_ms: int = 1_000) -> None:
        if forward_jump_ms <= 0 or backward_jump_ms <= 0:
            raise ValueError("jump thresholds must be positive")
        self.forward_jump_ms = forward_jump_ms
        self.backward_jump_ms = backward_jump_ms
        self._tracks: dict[str, _Track] = {}
        self._base_offset: int | None = None
        self._latest_in: int | None = None
        self._latest_out: int | None = None
        self._jump: _Jump | None = None

    def last_dts(self, track: str) -> int | None:
        state = self._tracks.get(track)
        return state.last_dts if state is not None else None

    def map(self, track: str, ts: int) -> tuple[int, list[Repair]]:
        """Where input timestamp ``ts`` (ms) of ``track`` lies on the timeline (not yet ordered)."""
        repairs: list[Repair] = []
        state = self._tracks.get(track)
        if state is None:
            state = self._tracks[track] = _Track(offset=self._base_offset or 0)
        reference = state.last_in if state.last_in is not None else self._latest_in
        unwrapped = ts
        if reference is not None:
            unwrapped = ts + WRAP * round((reference - ts) / WRAP)
            if unwrapped // WRAP != reference // WRAP:
                repairs.append(Repair(RepairKind.TIMESTAMP_WRAP, track,
                                      f"{track} timestamp {ts} ms after {reference % WRAP} ms: the 32-bit clock "
                                      f"wrapped, read as {unwrapped} ms"))
        if self._base_offset is None:
            self._base_offset = state.offset = -unwrapped  # the publish's first unit is time 0
        out = unwrapped + state.offset
        if state.last_out is None:
            if self._latest_out is not None and abs(out - self._latest_out) > self.forward_jump_ms:
                # a track whose clock is far from the others': line it up with them
                shift = self._latest_out - out
                state.offset += shift
                repairs.append(Repair(RepairKind.TIMESTAMP_JUMP, track,
                                      f"{track} starts {-shift} ms away from the other track: aligned to it"))
                out += shift
        else:
            assert state.last_in is not None and self._latest_out is not None
            backward = out < state.last_out - self.backward_jump_ms
            forward = out > self._latest_out + self.forward_jump_ms
            if backward or forward:
                delta_in = unwrapped - state.last_in
                jump = self._jump
                if (jump is not None and jump.track != track and abs(delta_in - jump.delta_in) <= self.backward_jump_ms
                        and abs(out + jump.shift - jump.at) <= _JUMP_PAIRING):
                    shift = jump.shift  # the same clock jump as the other track's: the same correction
                    self._jump = None
                else:
                    shift = state.last_out + state.step - out
                    self._jump = _Jump(track, delta_in, shift, out + shift)
                state.offset += shift
                out += shift
                repairs.append(Repair(RepairKind.TIMESTAMP_JUMP, track,
                                      f"{track} timestamp jumped by {delta_in} ms ({state.last_in} -> {unwrapped} ms): "
                                      f"continued at {out} ms"))
            elif 0 < out - state.last_out <= 1_000:
                state.step = out - state.last_out
        state.last_in = unwrapped
        state.last_out = out
        self._latest_in = unwrapped if self._latest_in is None else max(self._latest_in, unwrapped)
        self._latest_out = out if self._latest_out is None else max(self._latest_out, out)
        return out, repairs

    def advance(self, ms: int) -> None:
        """Move every track's timeline on by ``ms`` from the next unit (a gap between two runs)."""
        for state in self._tracks.values():
            state.offset += ms
        if self._base_offset is not None:
            self._base_offset += ms

    def order(self, track: str, dts: int) -> tuple[int, Repair | None]:
        """``dts`` made strictly greater than the track's previous decoding time (and not negative)."""
        state = self._tracks.setdefault(track, _Track(offset=self._base_offset or 0))
        last = state.last_dts
        repair = None
        if last is None:
            dts = max(dts, 0)  # a unit from just before the first one: the start of the timeline
        elif dts <= last:
            repair = Repair(RepairKind.DTS_NOT_INCREASING, track,
                            f"{track} decoding time {dts} ms not after the previous {last} ms: moved to {last + 1} ms")
            dts = last + 1
        state.last_dts = dts
        return dts, repair
