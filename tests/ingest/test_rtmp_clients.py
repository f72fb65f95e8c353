"""Real publishers against RtmpServer: the ffmpeg CLI, PyAV (libavformat's
RTMP client), GStreamer rtmp2sink and rtmpsink (librtmp, as in OBS); and the
malformed-input cases run while a healthy ffmpeg publish is live."""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from ingest.media import MediaKind
from ingest.rtmp import RtmpServer
from tests.ingest.conftest import (
    GOOD_KEY,
    MALFORMED,
    RecordingHub,
    RecordingSink,
    run_malformed,
    wait_until,
)
from tests.conftest import require_tool
from tests.support.tls import self_signed

FPS = 25


def ffmpeg_cmd(url: str, seconds: float, *, realtime: bool = True) -> list[str]:
    return [require_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-nostdin",
            *(["-re"] if realtime else []),
            "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={FPS}", "-f", "lavfi", "-i", "sine=frequency=440",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS), "-c:a", "aac",
            "-f", "flv", url]


async def run(cmd: list[str], timeout: float = 30.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")


def assert_healthy_publish(sink: RecordingSink, *, video_frames: int | None = None, min_seconds: float = 1.5) -> None:
    """H.264 + AAC configs first, keyframes, increasing timestamps, metadata size."""
    video_cfg = sink.media(MediaKind.VIDEO, config=True)
    audio_cfg = sink.media(MediaKind.AUDIO, config=True)
    video = sink.media(MediaKind.VIDEO)
    audio = sink.media(MediaKind.AUDIO)
    assert video_cfg and video_cfg[0].codec == "h264" and video_cfg[0].data[0] == 1  # AVCDecoderConfigurationRecord
    assert audio_cfg and audio_cfg[0].codec == "aac" and len(audio_cfg[0].data) >= 2  # AudioSpecificConfig
    first_video = sink.units.index(video[0])
    assert sink.units.index(video_cfg[0]) < first_video and video[0].keyframe
    assert sum(u.keyframe for u in video) >= 2  # -g 25: a keyframe every second
    if video_frames is not None:
        assert len(video) == video_frames
    for stream in (video, audio):
        dts = [u.dts for u in stream]
        assert dts == sorted(dts) and dts[-1] - dts[0] >= min_seconds * 1000 * 0.9
        assert all(u.pts >= u.dts for u in stream)
    assert len(audio) >= min_seconds * 44100 / 1024 * 0.9
    meta = sink.metadata[0]
    assert meta["width"] == 320 and meta["height"] == 240


async def test_ffmpeg_cli_publish(rtmp_server: RtmpServer, rtmp_hub: RecordingHub,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="onair.rtmp")
    url = f"rtmp://127.0.0.1:{rtmp_server.port}/live/{GOOD_KEY}"
    rc, out = await run(ffmpeg_cmd(url, 2))
    assert rc == 0, out
    sink = rtmp_hub.sink_for(GOOD_KEY)
    await wait_until(lambda: bool(sink.close_reasons))
    assert_healthy_publish(sink, video_frames=2 * FPS)
    assert sink.close_reasons == ["deleteStream"]
    assert sink.remote.startswith("127.0.0.1:")
    assert "digest handshake done" in caplog.text  # libavformat verified our FP9 digests


async def test_ffmpeg_obs_style_server_and_key_with_query(rtmp_server: RtmpServer, rtmp_hub: RecordingHub) -> None:
    """OBS puts the key in the stream name; ffmpeg's -rtmp_app/-rtmp_playpath do the same split."""
    url = f"rtmp://127.0.0.1:{rtmp_server.port}/live"
    cmd = ffmpeg_cmd(url, 1, realtime=False)
    cmd[-1:-1] = ["-rtmp_app", "live", "-rtmp_playpath", f"{GOOD_KEY}?bitrate=1000"]
    rc, out = await run(cmd)
    assert rc == 0, out
    sink = rtmp_hub.sink_for(GOOD_KEY)
    await wait_until(lambda: sink.close_reasons == ["deleteStream"])
    assert len(sink.media(MediaKind.VIDEO)) == FPS


async def test_ffmpeg_wrong_key_fails(rtmp_server: RtmpServer, rtmp_hub: RecordingHub,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onair.rtmp")
    url = f"rtmp://127.0.0.1:{rtmp_server.port}/live/not-the-key"
    rc, out = await run(ffmpeg_cmd(url, 1, realtime=False))
    assert rc != 0
    assert rtmp_hub.sinks == [] and rtmp_hub.refused == ["bad_key"]
    assert "refused (bad_key)" in caplog.text and "not-…" in caplog.text
    assert "not-the-key" not in caplog.text


def _pyav_publish(url: str, seconds: int) -> None:
    import av
    import numpy as np

    with av.open(url, "w", format="flv") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.options = {"preset": "ultrafast", "g": str(FPS)}
        audio = out.add_stream("aac", rate=44100, layout="mono")
        audio_tb = Fraction(1, 44100)
        samples = 0
        for i in range(seconds * FPS):
            img = np.full((240, 320, 3), (i * 8) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            out.mux(video.encode(frame))
            while samples < (i + 1) * 44100 // FPS:
                t = (np.arange(1024) + samples) / 44100
                chunk = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(1, -1)
                aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                aframe.sample_rate = 44100
                aframe.pts = samples
                aframe.time_base = audio_tb
                out.mux(audio.encode(aframe))
                samples += 1024
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


async def test_pyav_publish(rtmp_server: RtmpServer, rtmp_hub: RecordingHub) -> None:
    # In its own process: PyAV's mux() keeps the GIL while libavformat blocks
    # on the socket, so a publisher thread would starve the server's loop.
    url = f"rtmp://127.0.0.1:{rtmp_server.port}/live/{GOOD_KEY}"
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r}); "
            f"from tests.ingest.test_rtmp_clients import _pyav_publish; _pyav_publish({url!r}, 2)")
    rc, out = await run([sys.executable, "-c", code])
    assert rc == 0, out
    sink = rtmp_hub.sink_for(GOOD_KEY)
    await wait_until(lambda: bool(sink.close_reasons))
    assert_healthy_publish(sink, video_frames=2 * FPS)
    assert sink.close_reasons == ["deleteStream"]


@pytest.mark.parametrize("element", ["rtmp2sink", "rtmpsink"])
async def test_gstreamer_publish(element: str, rtmp_server: RtmpServer, rtmp_hub: RecordingHub,
                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="onair.rtmp")
    gst = require_tool("gst-launch-1.0")
    url = f"rtmp://127.0.0.1:{rtmp_server.port}/live/{GOOD_KEY}"
    pipeline = (
        f"videotestsrc num-buffers={2 * FPS} ! video/x-raw,width=320,height=240,framerate={FPS}/1 "
        f"! x264enc speed-preset=ultrafast tune=zerolatency key-int-max={FPS} ! h264parse "
        f"! flvmux name=mux streamable=true ! {element} location={url} "
        f"audiotestsrc num-buffers={2 * 44100 // 1024} ! audioconvert ! avenc_aac ! aacparse ! mux."
    )
    rc, out = await run([gst, "-q", "-e", *pipeline.split()])
    assert rc == 0, out
    sink = rtmp_hub.sink_for(GOOD_KEY)
    await wait_until(lambda: bool(sink.close_reasons))
    assert_healthy_publish(sink, video_frames=2 * FPS, min_seconds=1.5)
    assert sink.close_reasons == ["deleteStream"]
    assert "handshake done" in caplog.text


async def test_malformed_inputs_while_ffmpeg_publishes(rtmp_server: RtmpServer, rtmp_hub: RecordingHub,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onair.rtmp")
    url = f"rtmp://127.0.0.1:{rtmp_server.port}/live/{GOOD_KEY}"
    seconds = 4
    proc = await asyncio.create_subprocess_exec(*ffmpeg_cmd(url, seconds), stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)
    try:
        await asyncio.wait_for(rtmp_hub.opened.wait(), 15)
        sink = rtmp_hub.sink_for(GOOD_KEY)
        await asyncio.wait_for(sink.first_unit.wait(), 15)
        for name in MALFORMED:
            await run_malformed(name, rtmp_server.port, rtmp_hub, caplog)
            assert not sink.close_reasons, f"healthy publish ended during {name}"
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode(errors="replace")
    await wait_until(lambda: bool(sink.close_reasons))
    assert_healthy_publish(sink, video_frames=seconds * FPS, min_seconds=seconds - 0.5)
    assert sink.close_reasons == ["deleteStream"]
    assert sorted(code for _, code in rtmp_hub.refusals) == sorted(code for _, code, _ in MALFORMED.values())


async def test_killed_publisher_closes_sink_with_network(rtmp_server: RtmpServer, rtmp_hub: RecordingHub) -> None:
    url = f"rtmp://127.0.0.1:{rtmp_server.port}/live/{GOOD_KEY}"
    proc = await asyncio.create_subprocess_exec(*ffmpeg_cmd(url, 10), stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
    try:
        await asyncio.wait_for(rtmp_hub.opened.wait(), 15)
        sink = rtmp_hub.sink_for(GOOD_KEY)
        await asyncio.wait_for(sink.first_unit.wait(), 15)
    finally:
        proc.kill()
        await proc.wait()
    await wait_until(lambda: bool(sink.close_reasons))
    await asyncio.sleep(0.05)
    assert sink.close_reasons == ["network"]
    assert rtmp_hub.refusals == []  # a dropped publisher is not a refusal


@pytest.fixture
def tls_context(tmp_path: Path) -> ssl.SSLContext:
    cert, key = self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def test_rtmps_publish_with_ffmpeg(rtmp_hub: RecordingHub, tls_context: ssl.SSLContext) -> None:
    async with RtmpServer(rtmp_hub, port=0, ssl_context=tls_context) as server:
        url = f"rtmps://127.0.0.1:{server.port}/live/{GOOD_KEY}"
        rc, out = await run(ffmpeg_cmd(url, 1, realtime=False))
        assert rc == 0, out
        sink = rtmp_hub.sink_for(GOOD_KEY)
        await wait_until(lambda: bool(sink.close_reasons))
        assert len(sink.media(MediaKind.VIDEO)) == FPS
        assert sink.close_reasons == ["deleteStream"]
