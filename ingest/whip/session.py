"""One WHIP publish: its aiortc peer connection, the tracks it receives and the encoder feeding the node.

Life of a session (one owner task, :meth:`WhipSession.run`)::

    negotiate (offer -> answer; ICE gathered on the configured hosts only)
      -> activate (the hub accepted the publish: consume tracks, start the encoder)
      -> run until: DELETE | hub disconnect | peer connection failed/closed
                    | not connected within connect_timeout | no media for media_timeout
      -> cleanup, in reverse order: track readers, peer connection, encoder
         (flushed, thread joined), sink.close(reason)

Every peer connection is created and closed through :class:`PeerConnections`,
which counts them, so a test can prove that no error path leaves one behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from ingest.media import MediaUnit
from ingest.source import PublishSink, redact
from ingest.whip.encoder import EncoderOptions, EncoderStats, MediaEncoder, output_size
from ingest.whip.ice import IceServer, restrict_host_addresses
from ingest.whip.timing import TrackClock

log = logging.getLogger("onair.whip")


@dataclass(frozen=True)
class SessionOptions:
    ice_hosts: tuple[str, ...] = ()
    ice_servers: tuple[IceServer, ...] = ()
    #: the publisher must complete ICE + DTLS within this many seconds of the answer
    connect_timeout: float = 15.0
    #: no frame for this long while connected: the publisher is gone (ICE consent alone takes ~30 s)
    media_timeout: float = 10.0
    encoder: EncoderOptions = field(default_factory=EncoderOptions)


class PeerConnections:
    """Every RTCPeerConnection of the WHIP edge, from creation until ``close()`` has finished."""

    def __init__(self) -> None:
        self._open: set[RTCPeerConnection] = set()
        #: peer connections ever created (each one an ICE agent and DTLS setup)
        self.created = 0

    @property
    def count(self) -> int:
        return len(self._open)

    def create(self, configuration: RTCConfiguration) -> RTCPeerConnection:
        pc = RTCPeerConnection(configuration)
        self.created += 1
        self._open.add(pc)
        return pc

    async def close(self, pc: RTCPeerConnection) -> None:
        try:
            await pc.close()
        finally:
            self._open.discard(pc)


class WhipSession:
    def __init__(self, broadcast_id: str, stream_key: str, remote: str, options: SessionOptions,
                 peers: PeerConnections, on_closed: Callable[["WhipSession"], None]) -> None:
        self.id = secrets.token_urlsafe(18)
        self.etag = secrets.token_hex(8)
        self.broadcast_id = broadcast_id
        self.stream_key = stream_key
        self.remote = remote
        self.close_reason: str | None = None
        self._options = options
        self._peers = peers
        self._on_closed = on_closed
        self._pc: RTCPeerConnection | None = None
        self._sink: PublishSink | None = None
        self._tracks: list[MediaStreamTrack] = []
        self._readers: list[asyncio.Task[None]] = []
        self._runner: asyncio.Task[None] | None = None
        self._encoder: MediaEncoder | None = None
        self._end = asyncio.Event()
        self._end_reason = ""
        self._done = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._last_media = self._loop.time()
        self._sent_metadata = False

    # --- setup ----------------------------------------------------------------

    async def negotiate(self, offer_sdp: str) -> str:
        """Create the peer connection and answer the offer (raises ValueError on an offer aiortc refuses)."""
        configuration = RTCConfiguration(iceServers=[s.rtc() for s in self._options.ice_servers])
        pc = self._peers.create(configuration)
        self._pc = pc
        pc.on("track", self._tracks.append)
        pc.on("connectionstatechange", self._state_changed)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.kind in ("audio", "video"):
                transceiver.direction = "recvonly"
        answer = await pc.createAnswer()
        # Candidates are gathered here: only on the configured host addresses.
        with restrict_host_addresses(self._options.ice_hosts):
            await pc.setLocalDescription(answer)
        local = pc.localDescription
        if not any(t.currentDirection == "recvonly" and t.kind == "video" for t in pc.getTransceivers()):
            raise ValueError("the answer accepts no video: no codec in common")
        return local.sdp

    def activate(self, sink: PublishSink) -> None:
        """The hub took the publish: start reading media and the owner task."""
        self._sink = sink
        self._encoder = MediaEncoder(self._emit_threadsafe, self._options.encoder, name=f"whip-{self.broadcast_id}",
                                     audio=any(t.kind == "audio" for t in self._tracks))
        self._encoder.start()
        start = self._loop.time()
        self._last_media = start
        for track in self._tracks:
            self._readers.append(asyncio.create_task(self._read(track, TrackClock(start)),
                                                     name=f"whip-{self.broadcast_id}-{track.kind}"))
        self._runner = asyncio.create_task(self.run(), name=f"whip-session-{self.broadcast_id}")

    # --- running --------------------------------------------------------------

    def end(self, reason: str) -> None:
        """Ask the session to end (idempotent; the first reason wins)."""
        if not self._end.is_set():
            self._end_reason = reason
            self._end.set()

    async def wait_closed(self) -> None:
        await self._done.wait()

    def hub_disconnect(self) -> None:
        """The node dropped this publisher (broadcast ended, key rotated ...)."""
        self.end("disconnected by node")

    def _state_changed(self) -> None:
        if self._pc is not None and self._pc.connectionState in ("failed", "closed"):
            self.end("network")

    async def run(self) -> None:
        """Owner of the session: waits for its end, then cleans up everything it holds."""
        try:
            connected = False
            while not self._end.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._end.wait(), 1.0)
                if self._end.is_set():
                    break
                now = self._loop.time()
                state = self._pc.connectionState if self._pc is not None else "closed"
                if state == "connected":
                    if not connected:
                        connected = True
                        self._last_media = now
                        log.info("WHIP session of %s from %s connected", self.broadcast_id, self.remote)
                    elif now - self._last_media > self._options.media_timeout:
                        log.warning("WHIP session of %s: no media for %.0f s", self.broadcast_id,
                                    self._options.media_timeout)
                        self.end("network")
                elif not connected and now - self._last_media > self._options.connect_timeout:
                    log.warning("WHIP session of %s: not connected after %.0f s (state %s)", self.broadcast_id,
                                self._options.connect_timeout, state)
                    self.end("network")
        finally:
            await self._cleanup(self._end_reason or "shutdown")

    async def _read(self, track: MediaStreamTrack, clock: TrackClock) -> None:
        assert self._encoder is not None
        video = track.kind == "video"
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = self._loop.time()
            self._last_media = now
            if frame.time_base is None:  # aiortc's decoders always set it: a frame without a clock has no place
                continue
            ms = clock.to_ms(frame.pts or 0, frame.time_base, now)
            if video:
                assert isinstance(frame, av.VideoFrame)
                if not self._sent_metadata and self._sink is not None:
                    self._sent_metadata = True
                    width, height = output_size(frame.width, frame.height, self._options.encoder.max_width,
                                                self._options.encoder.max_height)
                    self._sink.on_metadata({"width": width, "height": height, "videocodecid": 7,
                                            "audiocodecid": 10, "encoder": "onair-whip",
                                            "source_width": frame.width, "source_height": frame.height})
                self._encoder.put_video(frame, ms)
            else:
                assert isinstance(frame, av.AudioFrame)
                self._encoder.put_audio(frame, ms)

    def _emit_threadsafe(self, unit: MediaUnit) -> None:
        # called from the encoder thread; the sink lives on the event loop
        try:
            self._loop.call_soon_threadsafe(self._deliver, unit)
        except RuntimeError:  # loop closed during shutdown: nothing left to deliver to
            pass

    def _deliver(self, unit: MediaUnit) -> None:
        if self._sink is not None and self.close_reason is None:
            self._sink.on_unit(unit)

    # --- cleanup --------------------------------------------------------------

    async def discard(self) -> None:
        """Close a session that never became active (refused by the hub, failed negotiation)."""
        await self._cleanup("refused")

    async def _cleanup(self, reason: str) -> None:
        if self._done.is_set():
            return
        try:
            for task in self._readers:
                task.cancel()
            for task in self._readers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._pc is not None:
                await self._peers.close(self._pc)
            if self._encoder is not None:
                self._encoder.stop()
                await asyncio.to_thread(self._encoder.join)
                # the units the flush handed to the loop run before this point resumes
                await asyncio.sleep(0)
                stats = self._encoder.stats
                log.info("WHIP session of %s: %d/%d video and %d/%d audio frames encoded, %d+%d dropped, "
                         "%d errors", self.broadcast_id, stats.video_out, stats.video_in, stats.audio_out,
                         stats.audio_in, stats.video_dropped, stats.audio_dropped, stats.errors)
            self.close_reason = reason
            if self._sink is not None:
                log.info("WHIP publish of %s from %s ended: %s (key %s)", self.broadcast_id, self.remote, reason,
                         redact(self.stream_key))
                await self._sink.close(reason)
        finally:
            self.close_reason = self.close_reason or reason
            self._done.set()
            self._on_closed(self)

    @property
    def active(self) -> bool:
        return self._runner is not None

    @property
    def encoder_stats(self) -> "EncoderStats | None":
        return self._encoder.stats if self._encoder is not None else None
