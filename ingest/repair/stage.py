"""The repair stage on media units: one publish in, a stream every muxer and decoder takes out.

``push`` takes the units of one publish in arrival order and returns the units
to hand on (none, one, or several: video frames of a stream with B-frames wait
until their presentation time is known, a changed configuration comes out as a
configuration unit).  What comes out:

- one timeline from 0, continuous across wraps and jumps (:mod:`.clock`);
- per track, decoding times strictly increasing; presentation time never
  before the decoding time;
- video presentation times in display order (from the picture order count for
  streams that can reorder, :mod:`.reorder`; at least increasing in decoding
  order for streams that cannot);
- the keyframe flag set exactly on IDR access units, a configuration unit
  before the first frame whose in-band SPS describes another picture, and no
  frame the decoder could not frame (up to the next IDR) (:mod:`.video`).

Each repair is recorded as a :class:`Repair`; ``take_repairs`` hands them out.
"""

from __future__ import annotations

from dataclasses import replace

from ingest.avc import Sps
from ingest.media import MediaKind, MediaUnit
from ingest.repair.cadence import Cadence
from ingest.repair.clock import Timeline
from ingest.repair.kinds import Repair, RepairKind
from ingest.repair.reorder import Reorderer, Timed
from ingest.repair.video import VideoInspector

#: reorder depth assumed when the SPS does not give max_num_reorder_frames
DEFAULT_REORDER_DEPTH = 2


class MediaRepair:
    def __init__(self, *, forward_jump_ms: int = 10_000, backward_jump_ms: int = 1_000) -> None:
        self._clock = Timeline(forward_jump_ms=forward_jump_ms, backward_jump_ms=backward_jump_ms)
        self._video = VideoInspector()
        self._video_config: bytes | None = None
        self._reorder: Reorderer[MediaUnit] | None = None
        self._cadence = Cadence()
        self._sent: int | None = None  # the previous video timestamp as sent (timeline)
        self._epoch = 0  # picture order counts restart at every IDR
        self._poc = 0
        self._last_pts: int | None = None
        self._drop_to_idr = False
        self._repairs: list[Repair] = []

    def take_repairs(self) -> list[Repair]:
        repairs, self._repairs = self._repairs, []
        return repairs

    def push(self, unit: MediaUnit) -> list[MediaUnit]:
        if unit.config:
            return self._config(unit)
        if unit.kind is MediaKind.AUDIO:
            ts = self._map("audio", unit.dts)
            return [replace(unit, dts=self._order("audio", ts), cts=0)]
        return self._video_unit(unit)

    def flush(self) -> list[MediaUnit]:
        """The publish ended (or its timeline is about to restart): everything still held."""
        if self._reorder is None:
            return []
        return [self._timed(frame) for frame in self._reorder.flush()]

    # --- video ---------------------------------------------------------------

    def _config(self, unit: MediaUnit) -> list[MediaUnit]:
        track = unit.kind.value
        dts = self._clock.last_dts(track) or 0
        if unit.kind is MediaKind.AUDIO:
            return [replace(unit, dts=dts, cts=0)]
        if unit.data == self._video_config:
            return [replace(unit, dts=dts, cts=0)]  # the same sequence header again
        self._video_config = unit.data
        try:
            sps = self._video.configure(unit.data)
        except ValueError:
            sps = None  # the worker says what is wrong with it; frames are still framed as AVCC
        return self._switch(sps, replace(unit, dts=dts, cts=0))

    def _switch(self, sps: Sps | None, config: MediaUnit) -> list[MediaUnit]:
        """A new video configuration: the frames still held, then the configuration.

        Streams whose SPS allows reordering (picture order type 0) get presentation times from the
        picture order; the new configuration's pictures are shown after every earlier one.  After a
        stream with reordering the timeline (both tracks) moves on by the reorder delay and a frame:
        the node starts a new worker, whose mp4 muxer shifts decoding times by the first frame's
        composition offset, and players that take presentation times after that shift (ffmpeg's mov
        demuxer does) must not see the two runs overlap.
        """
        out = self.flush()
        old = self._reorder
        if old is not None:
            self._clock.advance((old.depth + 1) * old.step)
        depth = DEFAULT_REORDER_DEPTH
        if sps is not None and sps.max_num_reorder_frames is not None:
            depth = sps.max_num_reorder_frames
        reorders = sps is not None and sps.poc_type == 0
        self._reorder = Reorderer(depth, after=self._last_pts, place=self._place) if reorders else None
        self._cadence.nominal_ms = sps.frame_ms if sps is not None else None
        return [*out, config]

    def _video_unit(self, unit: MediaUnit) -> list[MediaUnit]:
        try:
            seen = self._video.inspect(unit.data)
        except ValueError as exc:
            self._note(RepairKind.UNREADABLE, "video", f"video unit at {unit.dts} ms dropped ({exc}), "
                                                       "and the frames after it up to the next IDR")
            self._drop_to_idr = True
            return []
        out: list[MediaUnit] = []
        if seen.new_config is not None and seen.sps is not None:
            self._video_config = seen.new_config
            self._note(RepairKind.PARAMETER_SETS, "video",
                       f"in-band SPS for {seen.sps.width}x{seen.sps.height} (profile {seen.sps.profile_idc}) "
                       f"at {unit.dts} ms: new configuration")
            config = MediaUnit(MediaKind.VIDEO, unit.codec, self._clock.last_dts("video") or 0, 0, True, True,
                               seen.new_config)
            out += self._switch(seen.sps, config)
        keyframe = unit.keyframe
        if seen.idr != unit.keyframe:
            self._note(RepairKind.KEYFRAME_FLAG, "video",
                       f"video unit at {unit.dts} ms flagged {'key' if unit.keyframe else 'inter'}frame but "
                       f"{'holds' if seen.idr else 'holds no'} IDR picture: flag corrected")
            keyframe = seen.idr
        if self._drop_to_idr:
            if not seen.idr:
                self._note(RepairKind.UNREADABLE, "video",
                           f"video unit at {unit.dts} ms dropped: it follows an unreadable one, before the next IDR")
                return out
            self._drop_to_idr = False
        if seen.idr:
            self._epoch += 1
            self._poc = 0
        ts = self._map("video", unit.dts)
        given = ts + unit.cts
        if unit.cts < 0:
            self._note(RepairKind.PTS_BEFORE_DTS, "video",
                       f"video composition offset {unit.cts} ms at {unit.dts} ms: shown no earlier than decoded")
        frame = replace(unit, keyframe=keyframe)
        if self._reorder is not None:
            self._poc = seen.poc if seen.poc is not None else self._poc + 1
            out += [self._timed(f) for f in self._reorder.push(frame, ts, (self._epoch, self._poc), given)]
            return out
        placed = self._place(ts)
        dts = self._order("video", placed)
        pts = max(given + placed - ts, dts)
        poc_type = seen.sps.poc_type if seen.sps is not None else None
        if poc_type == 2 and self._last_pts is not None and pts <= self._last_pts:
            # display order is decoding order here: a picture cannot be shown before the previous one
            self._note(RepairKind.COMPOSITION, "video",
                       f"video presentation time {pts} ms not after the previous picture's {self._last_pts} ms "
                       "in a stream without reordering: moved after it")
            pts = self._last_pts + 1
        self._last_pts = pts
        out.append(replace(frame, dts=dts, cts=pts - dts))
        return out

    def _place(self, ts: int) -> int:
        """A video decoding time (in decoding order) on the stream's frame grid (:mod:`.cadence`)."""
        placed = self._cadence.place(ts)
        sent, self._sent = self._sent, ts
        if sent is not None and ts <= sent:
            self._note(RepairKind.DTS_NOT_INCREASING, "video",
                       f"video decoding time {ts} ms not after the previous {sent} ms: moved to {placed} ms")
        elif self._cadence.moved:
            how = ("timestamps are send times (frames bunch up): frames counted at the frame rate"
                   if self._cadence.counting else "frames closer than the frame rate: placed a frame apart")
            self._note(RepairKind.FRAME_TIMING, "video",
                       f"video frame sent at {ts} ms, {ts - (sent or 0)} ms after the previous one, in a stream of "
                       f"{self._cadence.frame_ms or 0:.1f} ms frames: at {placed} ms ({how})")
        return placed

    def _timed(self, frame: Timed[MediaUnit]) -> MediaUnit:
        assert frame.dts is not None and frame.pts is not None
        dts = self._order("video", frame.dts)
        pts = max(frame.pts, dts)
        if frame.dts_moved_from is not None:
            self._note(RepairKind.DTS_NOT_INCREASING, "video",
                       f"video decoding time {frame.dts_moved_from} ms not after the previous one: moved to {dts} ms")
        if not frame.given_in_order:
            self._note(RepairKind.COMPOSITION, "video",
                       f"video presentation time {frame.given} ms out of display order (picture order count "
                       f"{frame.key[1]}): presentation times taken from the picture order")
        self._last_pts = pts
        return replace(frame.item, dts=dts, cts=pts - dts)

    # --- both tracks ----------------------------------------------------------

    def _map(self, track: str, ts: int) -> int:
        out, repairs = self._clock.map(track, ts)
        self._repairs += repairs
        return out

    def _order(self, track: str, ts: int) -> int:
        dts, repair = self._clock.order(track, ts)
        if repair is not None:
            self._repairs.append(repair)
        return dts

    def _note(self, kind: RepairKind, track: str, detail: str) -> None:
        self._repairs.append(Repair(kind, track, detail))
