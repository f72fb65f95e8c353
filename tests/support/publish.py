"""Real RTMP publishers for tests: the ffmpeg CLI, GStreamer (rtmp2sink, or librtmp's rtmpsink) and PyAV
(libavformat's RTMP client)."""

from __future__ import annotations

import math
import subprocess
import threading
import time
from fractions import Fraction

import av
import numpy as np


def ffmpeg_publish(url: str, seconds: float, *, size: str = "640x360", rate: int = 25, gop: int = 25,
                   realtime: bool = True, extra: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Publish a moving test pattern and a tone: H.264 (keyframe every ``gop`` frames) + AAC."""
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    if realtime:
        args.append("-re")
    args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
             "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
             "-g", str(gop), "-keyint_min", str(gop), "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "96k", *(extra or []), "-f", "flv", url]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def gstreamer_publish(url: str, seconds: float, *, element: str = "rtmp2sink", size: tuple[int, int] = (640, 360),
                      rate: int = 25) -> subprocess.Popen[bytes]:
    """Publish a live test pattern and tone with GStreamer: x264 (keyframe every second) + AAC."""
    return subprocess.Popen(gst_command(url, sink=element, seconds=seconds, size=size, fps=rate, video_format=None,
                                        preset="ultrafast", gop=rate, bitrate=None),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def gst_command(url: str, *, sink: str = "rtmpsink", x264: tuple[str, ...] = ("tune=zerolatency",),
                seconds: float = 30, size: tuple[int, int] = (640, 360), fps: int = 30, pattern: str = "smpte",
                video_format: str | None = "I420", preset: str = "veryfast", gop: int | None = None,
                bitrate: int | None = 1000, record: str | None = None) -> list[str]:
    """``gst-launch-1.0`` publishing ``seconds`` of a live test pattern and a tone through flvmux.

    ``sink`` is ``rtmpsink`` (librtmp, the RTMP lineage OBS comes from) or ``rtmp2sink`` (GStreamer's own
    RTMP client); ``x264`` holds x264enc properties (``bframes=2``, ``tune=zerolatency``); ``gop`` is
    x264enc's ``key-int-max`` (two seconds by default), ``bitrate`` its kbit/s (None: x264enc's default).  The
    sources are live and stop after ``seconds`` worth of buffers, so the pipeline ends by itself (EOS, ``-e``).
    With ``record``, flvmux's output is also written to that file: exactly what the publisher sent.
    ``video_format=None`` leaves the raw format to negotiation (x264enc then picks 4:4:4 10-bit).
    """
    width, height = size
    caps = f"video/x-raw,{'format=' + video_format + ',' if video_format else ''}width={width},height={height},framerate={fps}/1"
    encoder = ["x264enc", *x264, f"key-int-max={gop or 2 * fps}", f"speed-preset={preset}",
               *([f"bitrate={bitrate}"] if bitrate else [])]
    video = ["videotestsrc", "is-live=true", f"pattern={pattern}", f"num-buffers={round(seconds * fps)}", "!", caps,
             "!", *encoder, "!", "h264parse", "!", "queue", "!", "flvmux", "name=mux", "streamable=true", "!"]
    if record is None:
        video += [sink, f"location={url}"]
    else:
        video += ["tee", "name=out", "!", "queue", "!", sink, f"location={url}",
                  "out.", "!", "queue", "!", "filesink", f"location={record}"]
    samples = math.ceil(seconds * 48000 / 1024)  # audiotestsrc buffers of 1024 samples
    audio = ["audiotestsrc", "is-live=true", f"num-buffers={samples}", "samplesperbuffer=1024", "!",
             "audio/x-raw,rate=48000", "!", "audioconvert", "!", "avenc_aac", "!", "aacparse", "!", "queue", "!", "mux."]
    return ["gst-launch-1.0", "-q", "-e", *video, *audio]


def ffmpeg_command(url: str, *, seconds: float = 12, size: str = "640x360", rate: int = 30, gop: int = 60,
                   x264: tuple[str, ...] = ("-preset", "veryfast", "-tune", "zerolatency"),
                   audio_rate: int | None = 48000, channels: int = 2, extra: tuple[str, ...] = ()) -> list[str]:
    """ffmpeg encoding a moving pattern (and a tone, unless ``audio_rate`` is None) live to ``url``."""
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    if audio_rate is not None:
        args += ["-re", "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={audio_rate}"]
    args += ["-t", str(seconds), "-c:v", "libx264", *x264, "-g", str(gop), "-keyint_min", str(gop),
             "-sc_threshold", "0", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", "96k", "-ar", str(audio_rate), "-ac", str(channels)] if audio_rate else ["-an"]
    return [*args, *extra, "-f", "flv", url]


class PyAVPublisher(threading.Thread):
    """Publish ``seconds`` of synthetic video and audio through PyAV at real-time pace."""

    def __init__(self, url: str, seconds: float, *, width: int = 640, height: int = 360, fps: int = 25) -> None:
        super().__init__(daemon=True)
        self.url, self.seconds, self.width, self.height, self.fps = url, seconds, width, height, fps
        self.error: BaseException | None = None
        self.frames_sent = 0

    def run(self) -> None:
        try:
            self._publish()
        except BaseException as exc:  # reported to the test through .error
            self.error = exc

    def _publish(self) -> None:
        out = av.open(self.url, mode="w", format="flv")
        video = out.add_stream("libx264", rate=self.fps, options={"preset": "ultrafast", "tune": "zerolatency"})
        video.width, video.height, video.pix_fmt = self.width, self.height, "yuv420p"
        video.codec_context.gop_size = self.fps
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        start = time.monotonic()
        total_frames = int(self.seconds * self.fps)
        samples_per_frame = 1024
        audio_pts = 0
        for i in range(total_frames):
            frame = _pattern(i, self.width, self.height)
            frame.pts = i
            frame.time_base = Fraction(1, self.fps)
            for packet in video.encode(frame):
                out.mux(packet)
            while audio_pts < (i + 1) * 48000 // self.fps:
                t = (np.arange(samples_per_frame) + audio_pts) / 48000
                tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                aframe = av.AudioFrame.from_ndarray(np.vstack([tone, tone]), format="fltp", layout="stereo")
                aframe.sample_rate = 48000
                aframe.pts = audio_pts
                aframe.time_base = Fraction(1, 48000)
                for packet in audio.encode(aframe):
                    out.mux(packet)
                audio_pts += samples_per_frame
            self.frames_sent = i + 1
            delay = start + (i + 1) / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        for packet in video.encode(None):
            out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
        out.close()


def _pattern(i: int, width: int, height: int) -> av.VideoFrame:
    x = np.arange(width, dtype=np.uint16)[None, :]
    y = np.arange(height, dtype=np.uint16)[:, None]
    r = ((x + i * 4) % 256).astype(np.uint8) * np.ones((height, 1), np.uint8)
    g = ((y + i * 2) % 256).astype(np.uint8) * np.ones((1, width), np.uint8)
    b = np.full((height, width), (i * 3) % 256, np.uint8)
    return av.VideoFrame.from_ndarray(np.dstack([r, g, b]), format="rgb24").reformat(format="yuv420p")
