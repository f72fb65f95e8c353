"""Synthetic media tracks (moving pattern, sine tone) for tests and benchmarks of the WHIP edge."""

from __future__ import annotations

import asyncio
import fractions
import math

import av
import numpy as np
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack


class PatternVideoTrack(VideoStreamTrack):
    """Colour bars that scroll one step per frame, paced in real time by aiortc."""

    def __init__(self, width: int = 320, height: int = 240, step: int = 4) -> None:
        super().__init__()
        self._step = step
        x = np.arange(width, dtype=np.int32)
        y = np.arange(height, dtype=np.int32)[:, None]
        base = np.empty((height, width, 3), dtype=np.uint8)
        base[..., 0] = (x * 255 // max(1, width - 1)).astype(np.uint8)
        base[..., 1] = ((y * 255 // max(1, height - 1)) + 0 * x).astype(np.uint8)
        base[..., 2] = (((x // 40) % 2) * 200).astype(np.uint8)
        self._base = base
        self.frames_sent = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        image = np.roll(self._base, shift=(self.frames_sent * self._step) % self._base.shape[1], axis=1)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.frames_sent += 1
        return frame


class ToneAudioTrack(AudioStreamTrack):
    """A sine tone, 20 ms stereo s16 frames at 48 kHz, paced in real time by aiortc."""

    def __init__(self, frequency: float = 440.0, rate: int = 48000) -> None:
        super().__init__()
        self._frequency = frequency
        self._rate = rate
        self.samples_sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        samples = int(0.02 * self._rate)
        # real-time pacing on the loop clock, like aiortc's own AudioStreamTrack
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + self.samples_sent / self._rate - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        pts, time_base = self.samples_sent, fractions.Fraction(1, self._rate)
        t = (np.arange(samples) + self.samples_sent) / self._rate
        wave = (0.3 * 32767 * np.sin(2 * math.pi * self._frequency * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(wave, 2)[None, :], format="s16", layout="stereo")
        frame.sample_rate = self._rate
        frame.pts, frame.time_base = pts, time_base
        self.samples_sent += samples
        return frame
