"""The WHIP encoder worker: decoded frames in, H.264 (AVCC) + AAC units out, on the frames' own clock."""

from __future__ import annotations

import threading

import av
import numpy as np

from ingest.media import MediaKind, MediaUnit
from ingest.whip.encoder import EncoderOptions, MediaEncoder, output_size


def video_frame(i: int, width: int = 160, height: int = 120) -> av.VideoFrame:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, (i * 4) % width:, 0] = 255
    return av.VideoFrame.from_ndarray(image, format="rgb24")


def audio_frame() -> av.AudioFrame:
    samples = np.zeros((1, 960 * 2), dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
    frame.sample_rate = 48000
    return frame


def run(feed) -> tuple[list[MediaUnit], MediaEncoder]:
    units: list[MediaUnit] = []
    lock = threading.Lock()

    def emit(unit: MediaUnit) -> None:
        with lock:
            units.append(unit)

    encoder = MediaEncoder(emit, EncoderOptions(queue_size=1000))
    encoder.start()
    feed(encoder)
    encoder.stop()
    encoder.join(30)
    return units, encoder


def avcc_nal_types(data: bytes) -> list[int]:
    types, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        assert size > 0 and i + 4 + size <= len(data), "not AVCC"
        types.append(data[i + 4] & 0x1F)
        i += 4 + size
    return types


def test_units_follow_frame_time_with_gaps_and_keyframes_every_2_s() -> None:
    def feed(encoder: MediaEncoder) -> None:
        # 3 s of 30 fps video and 20 ms audio, a 2 s network stall, then 1 s more
        for ms in list(range(0, 3000, 20)) + list(range(5000, 6000, 20)):
            encoder.put_audio(audio_frame(), ms)
            if ms % 100 in (0, 40) or ms % 100 == 60:  # ~30 fps, uneven spacing like a real sender
                encoder.put_video(video_frame(ms // 33), ms)

    units, encoder = run(feed)
    assert encoder.stats.errors == 0 and encoder.stats.video_dropped == 0
    assert units[0].kind is MediaKind.AUDIO and units[0].config  # AudioSpecificConfig before anything
    assert units[0].data[:2] == bytes.fromhex("1190")  # AAC LC, 48 kHz, stereo
    video_configs = [u for u in units if u.kind is MediaKind.VIDEO and u.config]
    assert len(video_configs) == 1 and video_configs[0].data[0] == 1  # AVCDecoderConfigurationRecord
    video = [u for u in units if u.kind is MediaKind.VIDEO and not u.config]
    audio = [u for u in units if u.kind is MediaKind.AUDIO and not u.config]
    assert [u.dts for u in video] == sorted({u.dts for u in video})
    assert all(u.cts == 0 for u in video)  # zerolatency: no B-frames
    assert video[0].keyframe and 5 in avcc_nal_types(video[0].data)
    assert [u.dts for u in video if u.keyframe] == [0, 2000, 5000]  # every 2 s of media time, and after the gap
    # the stall is a gap, not a fast-forward
    assert max(b.dts - a.dts for a, b in zip(video, video[1:])) >= 1900
    assert video[-1].dts >= 5900
    audio_dts = [u.dts for u in audio]
    assert audio_dts == sorted(audio_dts)
    gap = max(b - a for a, b in zip(audio_dts, audio_dts[1:]))
    assert 1900 <= gap <= 2100
    assert abs(audio_dts[-1] - video[-1].dts) <= 100
    # 4 s of audio in, 1024-sample AAC frames out (minus what was left in the fifo at the gap)
    assert 4 * 48000 / 1024 - 3 <= len(audio) <= 4 * 48000 / 1024 + 1


def test_resolution_changes_keep_the_first_size_and_bounds_hold() -> None:
    def feed(encoder: MediaEncoder) -> None:
        for i in range(10):
            encoder.put_video(video_frame(i, *((160, 120) if i < 5 else (320, 240))), i * 33)

    units, encoder = run(feed)
    assert encoder.stats.errors == 0
    decoder = av.CodecContext.create("h264", "r")
    config = next(u for u in units if u.config and u.kind is MediaKind.VIDEO).data
    sps_len = int.from_bytes(config[6:8], "big")
    sps = config[8:8 + sps_len]
    pps = config[8 + sps_len + 3:]
    decoder.extradata = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps
    sizes = set()
    for unit in units:
        if unit.config or unit.kind is not MediaKind.VIDEO:
            continue
        annexb = b"".join(b"\x00\x00\x00\x01" + unit.data[i + 4:i + 4 + int.from_bytes(unit.data[i:i + 4], "big")]
                          for i in _offsets(unit.data))
        for frame in decoder.decode(av.Packet(annexb)):
            sizes.add((frame.width, frame.height))
    assert sizes == {(160, 120)}
    assert output_size(3840, 2160, 1920, 1080) == (1920, 1080)
    assert output_size(641, 481, 1920, 1080) == (640, 480)


def _offsets(data: bytes) -> list[int]:
    offsets, i = [], 0
    while i < len(data):
        offsets.append(i)
        i += 4 + int.from_bytes(data[i:i + 4], "big")
    return offsets


def test_full_queue_drops_frames_instead_of_growing() -> None:
    encoder = MediaEncoder(lambda unit: None, EncoderOptions(queue_size=4))
    # not started: nothing drains the queue
    accepted = [encoder.put_video(video_frame(i), i * 33) for i in range(10)]
    assert accepted == [True] * 4 + [False] * 6
    assert encoder.stats.video_dropped == 6
    encoder.stop()  # makes room for its sentinel, never blocks
    encoder.start()
    encoder.join(30)
    assert not encoder.put_audio(audio_frame(), 0)  # stopped: refused
