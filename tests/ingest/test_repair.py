"""ingest.repair: crafted and fuzzed timestamp sequences, and a real B-frame encode broken the ways publishers break it.

The stage's promise, checked on every example: per track strictly increasing
decoding times from 0, presentation never before decoding, video shown in the
bitstream's display order, keyframe flags exactly on IDR frames, nothing lost,
and a real mp4 muxer (the one that crashed the worker) takes every frame.
"""

from __future__ import annotations

import io
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import avc
from ingest.media import MediaKind, MediaUnit
from ingest.repair import MediaRepair, RepairKind
from ingest.repair.cadence import Cadence
from ingest.repair.clock import WRAP, Timeline
from ingest.repair.reorder import Reorderer

try:  # tests/ingest may or may not be a package
    from tests.ingest.flvfile import make_flv, read_units
except ImportError:
    from flvfile import make_flv, read_units  # type: ignore[no-redef]

FRAME = 1000 / 30


# --- the clock ------------------------------------------------------------------

def _run_clock(timeline: Timeline, units: list[tuple[str, int]]) -> list[tuple[str, int]]:
    out = []
    for track, ts in units:
        mapped, _ = timeline.map(track, ts)
        out.append((track, timeline.order(track, mapped)[0]))
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["video", "audio"]), st.integers(0, WRAP - 1)), min_size=1, max_size=60))
def test_any_timestamps_come_out_increasing_per_track_from_zero(units: list[tuple[str, int]]) -> None:
    out = _run_clock(Timeline(), units)
    assert out[0][1] == 0
    for track in ("video", "audio"):
        times = [ts for name, ts in out if name == track]
        assert all(t >= 0 for t in times) and all(a < b for a, b in zip(times, times[1:]))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, WRAP - 1), st.integers(1, 500))
def test_the_32_bit_clock_wraps_without_a_seam(start: int, count: int) -> None:
    timeline = Timeline()
    sent = [(start + i * 33) % WRAP for i in range(count)]
    out = [timeline.order("video", timeline.map("video", ts)[0])[0] for ts in sent]
    assert out == [i * 33 for i in range(count)]


def test_a_wrap_is_reported_once_per_crossing() -> None:
    timeline = Timeline()
    kinds = []
    for ts in (WRAP - 66, WRAP - 33, 0, 33, 66):
        kinds += [r.kind for r in timeline.map("video", ts)[1]]
    assert kinds == [RepairKind.TIMESTAMP_WRAP]


def test_both_tracks_jumping_together_keep_their_sync() -> None:
    timeline = Timeline()
    units = [("video", 1000), ("audio", 1010), ("video", 1033), ("audio", 1031),
             # the encoder's clock restarts: both tracks jump back to ~0, the audio a unit later
             ("video", 5), ("audio", 12), ("video", 38), ("audio", 33)]
    out = _run_clock(timeline, units)
    video = [ts for name, ts in out if name == "video"]
    audio = [ts for name, ts in out if name == "audio"]
    assert video[:2] == [0, 33] and audio[:2] == [10, 31]
    assert video[2] > video[1] and audio[2] > audio[1]
    # after the jump, audio sits where it sat relative to video before it (same correction)
    assert audio[2] - video[2] == 12 - 5 and audio[3] - video[3] == 33 - 38


def test_a_forward_jump_beyond_the_threshold_is_closed() -> None:
    timeline = Timeline(forward_jump_ms=10_000)
    out = _run_clock(timeline, [("video", 0), ("video", 33), ("video", 66), ("video", 600_066), ("video", 600_099)])
    assert [ts for _, ts in out] == [0, 33, 66, 99, 132]
    # a pause shorter than the threshold is a pause
    out = _run_clock(Timeline(), [("video", 0), ("video", 33), ("video", 5_033)])
    assert [ts for _, ts in out] == [0, 33, 5_033]


# --- presentation times from the picture order ----------------------------------

@st.composite
def gops(draw: st.DrawFn) -> tuple[int, list[int], list[int]]:
    """A stream in decoding order: reorder depth, each frame's display index, its decoding time (ms)."""
    depth = draw(st.integers(0, 3))
    count = draw(st.integers(1, 60))
    # display order -> decoding order: each frame decoded at most ``depth`` frames before it is shown
    order = list(range(count))
    for start in range(0, count, depth + 1):
        chunk = order[start:start + depth + 1]
        if len(chunk) > 1 and draw(st.booleans()):
            order[start:start + depth + 1] = [chunk[-1], *chunk[:-1]]  # an anchor picture, then its B-frames
    steps = draw(st.lists(st.integers(1, 60), min_size=count, max_size=count))
    dts, now = [], 0
    for step in steps:
        dts.append(now)
        now += step
    return depth, order, dts


@settings(max_examples=300, deadline=None)
@given(gops())
def test_reordered_frames_are_shown_in_picture_order(stream: tuple[int, list[int], list[int]]) -> None:
    depth, order, dts = stream
    reorderer: Reorderer[int] = Reorderer(depth)
    out = []
    for index, shown in enumerate(order):
        out += reorderer.push(index, dts[index], (0, shown), dts[index])  # composition offsets all 0 (flvmux)
    out += reorderer.flush()
    assert [frame.item for frame in out] == list(range(len(order)))  # decoding order kept, nothing lost
    assert [frame.dts for frame in out] == dts
    assert all(frame.pts is not None and frame.dts is not None and frame.pts >= frame.dts for frame in out)
    shown = sorted(out, key=lambda frame: frame.pts or 0)
    assert [frame.key for frame in shown] == sorted(frame.key for frame in out)
    assert reorderer.grew == 0


def test_an_encoder_that_got_it_right_keeps_its_times() -> None:
    # x264 through ffmpeg, b-pyramid (depth 2): I0 P6 B2 B4 P12 B8 B10 at 30 fps
    decode = [(0, 0, 67), (34, 6, 167), (67, 2, 100), (100, 4, 134), (134, 12, 267), (167, 8, 200), (200, 10, 234)]
    reorderer: Reorderer[int] = Reorderer(2)
    out = []
    for dts, poc, pts in decode:
        out += reorderer.push(poc, dts, (0, poc), pts)
    out += reorderer.flush()
    assert [f.dts for f in out] == [dts for dts, _, _ in decode]
    # the last two shown are after the last timestamp sent: their times continue the grid's pace
    assert all(abs(f.pts - pts) <= 1 for f, (_, _, pts) in zip(out, decode))  # type: ignore[operator]
    assert all(f.given_in_order for f in out)


def test_a_depth_too_small_grows() -> None:
    reorderer: Reorderer[int] = Reorderer(0)
    out = []
    for index, poc in enumerate([0, 6, 2, 4, 12, 8, 10]):
        out += reorderer.push(poc, index * 33, (0, poc), index * 33)
    out += reorderer.flush()
    assert reorderer.grew >= 1
    times = [f.pts for f in out]
    assert len(set(times)) == len(times) and all(f.pts is not None and f.dts is not None and f.pts >= f.dts for f in out)


# --- the frame grid -------------------------------------------------------------

@pytest.mark.parametrize("rate", [25, 30, 30000 / 1001, 50, 60])
@pytest.mark.parametrize("nominal", [True, False])
def test_frames_already_on_their_grid_keep_their_times(rate: float, nominal: bool) -> None:
    cadence = Cadence()
    cadence.nominal_ms = 1000 / rate if nominal else None
    sent = [round(1234 + i * 1000 / rate) for i in range(600)]
    assert [cadence.place(ts) for ts in sent] == sent
    assert not cadence.counting


def test_dropped_frames_keep_their_gap() -> None:
    cadence = Cadence()
    cadence.nominal_ms = FRAME
    sent = [round(i * FRAME) for i in [*range(30), *range(45, 90)]]  # half a second dropped by the encoder
    assert [cadence.place(ts) for ts in sent] == sent


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 45), min_size=20, max_size=300))
def test_bunched_frames_land_on_distinct_ticks(steps: list[int]) -> None:
    # send-time stamps (flvmux under load): steps of 0-45 ms around a 30 fps stream
    cadence = Cadence()
    cadence.nominal_ms = FRAME
    now, sent = 0, []
    for step in steps:
        now += step
        sent.append(now)
    placed = [cadence.place(ts) for ts in sent]
    assert all(a < b for a, b in zip(placed, placed[1:]))
    ticks = [round((ts - placed[0]) / FRAME) for ts in placed]
    assert len(set(ticks)) == len(ticks), "two frames on one 1/30 s tick"


def test_a_backlog_flushed_under_one_timestamp_is_counted_at_the_frame_rate() -> None:
    # 900 frames of a live 30 fps source: the encoder sends at ~15 fps for 20 s, in pairs now and then (as
    # flvmux did under load), then everything else within the last second
    cadence = Cadence()
    cadence.nominal_ms = FRAME
    sent = [round(i * 1000 / 15) - (40 if i % 10 == 0 else 0) for i in range(300)] + [20_000 + i // 20 for i in range(600)]
    placed = [cadence.place(ts) for ts in sent]
    assert cadence.counting
    assert abs((placed[-1] - placed[0]) - 899 * FRAME) < 1_000  # as long as the frames, not the stamps


def test_calm_timestamps_after_a_backlog_stay_on_the_grid() -> None:
    # a stall, a burst of 30 frames sent within 30 ms (counted), then 400 frames of flvmux's 21/45 ms steps:
    # no step is bunched any more, but the count is a second ahead of the timestamps: still one frame a slot
    cadence = Cadence()
    cadence.nominal_ms = FRAME
    sent, now = [], 0.0
    for _ in range(60):
        sent.append(round(now))
        now += FRAME
    now += 800
    for i in range(30):
        sent.append(round(now))
        now += 0 if i % 2 else 2
    for i in range(400):
        now += 21 if i % 2 else 45
        sent.append(round(now))
    placed = [cadence.place(ts) for ts in sent]
    ticks = [round((ts - placed[0]) / FRAME) for ts in placed]
    assert len(set(ticks)) == len(ticks)
    assert cadence.counting  # the count and the timestamps never agreed again


# --- the stage on a real encode -------------------------------------------------

@pytest.fixture(scope="module")
def encode(tmp_path_factory: pytest.TempPathFactory) -> list[MediaUnit]:
    """x264 with B-frames (b-pyramid), 30 fps, 44.1 kHz mono AAC: what ffmpeg sends, correct."""
    path = make_flv(tmp_path_factory.mktemp("repair") / "b.flv", size="320x180", rate=30, seconds=3, gop=30,
                    x264=("-preset", "veryfast", "-bf", "3"), audio_rate=44100, channels=1)
    return read_units(path.read_bytes())


def _frames(units: list[MediaUnit]) -> list[MediaUnit]:
    return [u for u in units if u.kind is MediaKind.VIDEO and not u.config]


def _run(units: list[MediaUnit]) -> tuple[list[MediaUnit], list[RepairKind]]:
    repair = MediaRepair()
    out: list[MediaUnit] = []
    kinds: list[RepairKind] = []
    for unit in units:
        out += repair.push(unit)
        kinds += [r.kind for r in repair.take_repairs()]
    out += repair.flush()
    kinds += [r.kind for r in repair.take_repairs()]
    return out, kinds


def _mux_mp4(units: list[MediaUnit]) -> None:
    """What crashed the worker: libavformat's mp4 muxer (CMAF) refusing a packet. Raises if it does."""
    config = next(u for u in units if u.kind is MediaKind.VIDEO and u.config)
    sps = avc.parse_sps(avc.parse_decoder_config(config.data).sps[0])
    output = av.open(io.BytesIO(), "w", format="mp4", options={"movflags": "cmaf+empty_moov+default_base_moof"})
    stream = output.add_stream("h264")
    stream.width, stream.height = sps.width, sps.height
    stream.codec_context.extradata = config.data
    stream.time_base = Fraction(1, 1000)
    for unit in _frames(units):
        packet = av.Packet(unit.data)
        packet.dts, packet.pts, packet.time_base = unit.dts + 1400, unit.pts + 1400, Fraction(1, 1000)
        packet.is_keyframe = unit.keyframe
        packet.stream = stream
        output.mux(packet)
    output.close()


def test_a_correct_publisher_goes_through_untouched(encode: list[MediaUnit]) -> None:
    out, kinds = _run(encode)
    assert kinds == []
    start = encode[0].dts
    for kind in MediaKind:  # (video frames wait for their presentation time: the tracks interleave anew)
        got = [u for u in out if u.kind is kind and not u.config]
        sent = [u for u in encode if u.kind is kind and not u.config]
        assert [(u.dts, u.keyframe, u.data) for u in got] == [(u.dts - start, u.keyframe, u.data) for u in sent]
        # the pictures shown after the last timestamp sent (flushed at the end) continue the grid's pace
        assert all(abs(a.pts - b.pts + start) <= (1 if i >= len(got) - 2 else 0)
                   for i, (a, b) in enumerate(zip(got, sent)))


BREAKAGES = ["flvmux-zero-cts", "duplicate-dts", "send-time-jitter", "pts-in-the-tag", "near-wrap", "key-flags"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(BREAKAGES), min_size=1, max_size=4, unique=True), st.randoms(use_true_random=False))
def test_broken_timestamps_and_flags_come_out_muxable_in_display_order(encode: list[MediaUnit], breakages: list[str],
                                                                       rng) -> None:  # type: ignore[no-untyped-def]
    truth = {id(u): u for u in encode}
    broken: list[MediaUnit] = []
    previous_dts = 0
    for unit in encode:
        if unit.config:
            broken.append(unit)
            continue
        changed = unit
        if unit.kind is MediaKind.VIDEO:
            if "pts-in-the-tag" in breakages:
                changed = replace(changed, dts=unit.pts, cts=0)
            if "flvmux-zero-cts" in breakages:
                changed = replace(changed, cts=0)
            if "duplicate-dts" in breakages and rng.random() < 0.2:
                changed = replace(changed, dts=previous_dts)
            if "key-flags" in breakages and rng.random() < 0.2:
                changed = replace(changed, keyframe=not changed.keyframe)
            previous_dts = changed.dts
        if "send-time-jitter" in breakages:
            changed = replace(changed, dts=max(0, changed.dts + rng.randint(-15, 15)))
        if "near-wrap" in breakages:
            changed = replace(changed, dts=(changed.dts + WRAP - 1500) % WRAP)
        truth[id(changed)] = unit
        broken.append(changed)
    out, kinds = _run(broken)
    assert RepairKind.UNREADABLE not in kinds
    frames = _frames(out)
    originals = _frames(encode)
    assert [u.data for u in frames] == [u.data for u in originals]  # decoding order, nothing lost
    assert all(a.dts < b.dts for a, b in zip(frames, frames[1:])) and frames[0].dts >= 0
    assert all(u.pts >= u.dts for u in frames)
    sounds = [u for u in out if u.kind is MediaKind.AUDIO and not u.config]
    assert all(a.dts < b.dts for a, b in zip(sounds, sounds[1:]))
    # shown in the order the encoder meant
    shown = [frames.index(u) for u in sorted(frames, key=lambda u: u.pts)]
    meant = [originals.index(u) for u in sorted(originals, key=lambda u: u.pts)]
    assert shown == meant
    assert [u.keyframe for u in frames] == [u.keyframe for u in originals]  # x264 flags exactly its IDRs
    _mux_mp4(out)


def test_flvmux_duplicates_crash_the_muxer_unrepaired(encode: list[MediaUnit]) -> None:
    # the root cause of issue 13, without the stage: two frames with one decoding time
    frames = _frames(encode)
    broken = [replace(u, dts=frames[4].dts) if u is frames[5] else u for u in encode]
    with pytest.raises(av.error.ArgumentError):
        _mux_mp4(broken)
    out, kinds = _run(broken)
    assert RepairKind.DTS_NOT_INCREASING in kinds
    _mux_mp4(out)


def test_in_band_parameter_sets_of_another_size_start_a_new_configuration(tmp_path: Path,
                                                                           encode: list[MediaUnit]) -> None:
    second = read_units(make_flv(tmp_path / "small.flv", size="240x136", rate=30, seconds=1, gop=30, audio=False,
                                 x264=("-preset", "veryfast", "-bf", "3")).read_bytes())
    record = next(u for u in second if u.config)
    parsed = avc.parse_decoder_config(record.data)
    in_band = b"".join(len(n).to_bytes(4, "big") + n for n in (*parsed.sps, *parsed.pps))
    end = max(u.dts for u in encode) + 34
    follow = []
    for unit in _frames(second):  # no new sequence header: the SPS/PPS ride in the first IDR
        data = in_band + unit.data if unit is _frames(second)[0] else unit.data
        follow.append(replace(unit, dts=unit.dts + end, data=data))
    out, kinds = _run([*encode, *follow])
    assert kinds.count(RepairKind.PARAMETER_SETS) == 1
    configs = [u for u in out if u.kind is MediaKind.VIDEO and u.config]
    assert len(configs) == 2 and avc.parse_sps(avc.parse_decoder_config(configs[1].data).sps[0]).width == 240
    # the new configuration comes after every old frame and right before the new IDR
    index = out.index(configs[1])
    assert all(u.data in {f.data for f in _frames(encode)} for u in _frames(out[:index]))
    after = _frames(out[index:])
    assert after[0].keyframe and len(after) == len(follow)
    old_shown = max(u.pts for u in _frames(out[:index]))
    assert min(u.pts for u in after) > old_shown + 2 * 33  # a gap of the reorder delay between the two runs


def test_an_unframed_unit_drops_up_to_the_next_idr(encode: list[MediaUnit]) -> None:
    frames = _frames(encode)
    broken = [replace(u, data=b"\x00\x00\xff\xff" + u.data) if u is frames[3] else u for u in encode]
    out, kinds = _run(broken)
    next_idr = next(i for i, u in enumerate(frames) if i > 3 and u.keyframe)
    assert kinds.count(RepairKind.UNREADABLE) == next_idr - 3  # each unit dropped is counted
    assert len(_frames(out)) == len(frames) - (next_idr - 3)


def test_audio_44_1_khz_mono_passes_with_its_own_timeline(encode: list[MediaUnit]) -> None:
    out, _ = _run(encode)
    sent = [u for u in encode if u.kind is MediaKind.AUDIO and not u.config]
    got = [u for u in out if u.kind is MediaKind.AUDIO and not u.config]
    assert [u.data for u in got] == [u.data for u in sent]
    assert [u.dts for u in got] == [u.dts - encode[0].dts for u in sent]
