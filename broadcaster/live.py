"""Live broadcasts on this node: the ingest hub behind RTMP and WHIP.

It owns the status machine of every broadcast that has a publisher here::

    idle -> live -> reconnecting -> live (same playlists, #EXT-X-DISCONTINUITY)
                         \\-> ended  (grace expired, or POST /end)

and one :class:`ingest.pipeline.HlsPipeline` (a transcoder worker process) per
live broadcast.  Edges call :meth:`LiveManager.open_publish`; everything they
push goes through a :class:`PublisherSink`.

The node holds a lease (:mod:`broadcaster.leases`) on each broadcast it has a
session for and renews it every quarter of its TTL; a lease found taken
(ended from another node, or by a node that took the publisher over) ends the
session here.  A node that stopped without ending its broadcasts (``kill
-9``) resumes them when it starts again on the same data dir: each is put in
``reconnecting`` for the reconnect grace, with its playlists recovered from
disk, and its publisher continues after a discontinuity.  A publisher whose
stream key was rotated is dropped (``broadcaster/key_rotation.py`` decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from broadcaster.config import NodeConfig
from broadcaster.ingest_stats import IngestStats
from broadcaster.lease_keeper import LeaseKeeper
from broadcaster.leases import Leases, LocalLeases
from broadcaster.live_session import LiveSession, PublisherSink
from broadcaster.metrics import NodeMetrics
from broadcaster.registry import (Broadcast, BroadcastStore, Status, broadcast_id_from_key,
                                  secret_matches, with_status)
from ingest.hls.store import end_leftover_replays
from ingest.redact import redact
from ingest.source import MediaTaps, PublishRefused

if TYPE_CHECKING:
    from ingest.hls.watch import PlaylistWatch
    from ingest.pipeline import HlsPipeline

log = logging.getLogger("onair.live")


PipelineFactory = Callable[[str, Path], "HlsPipeline"]


class LiveManager:
    def __init__(self, store: BroadcastStore, config: NodeConfig, metrics: NodeMetrics,
                 pipeline_factory: PipelineFactory | None = None, watch: "PlaylistWatch | None" = None,
                 leases: Leases | None = None) -> None:
        self._store = store
        self._leases = leases or LocalLeases(config.node_id)
        self._keeper: asyncio.Task[None] | None = None
        self._watch = watch
        self._config = config
        self._metrics = metrics
        self._sessions: dict[str, LiveSession] = {}
        self._lock = asyncio.Lock()
        self._pipeline_factory = pipeline_factory or self._default_pipeline
        self._ticker: asyncio.Task[None] | None = None
        self._taps: MediaTaps | None = None
        #: told of every status this node gives a broadcast (the webhooks hub listens)
        self.status_listener: Callable[[Broadcast], None] | None = None

    def attach_taps(self, taps: MediaTaps | None) -> None:
        """Give every broadcast live here (now and from now on) a tap of ``taps`` (simulcast)."""
        self._taps = taps
        for broadcast_id, session in self._sessions.items():
            if taps is not None and session.tap is None:
                session.tap = taps.open(broadcast_id)

    def _default_pipeline(self, broadcast_id: str, out_dir: Path) -> "HlsPipeline":
        from ingest.pipeline import HlsPipeline, PipelineOptions
        from ingest.transcode.ladder import parse_ladder

        options = PipelineOptions(ladder=parse_ladder(self._config.ladder), segment_target=self._config.segment_target,
                                  live_window=self._config.live_window,
                                  low_latency=self._config.hls_variant == "lowlatency",
                                  part_target=self._config.part_target)
        return HlsPipeline(broadcast_id, out_dir, options, watch=self._watch)

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        alone = isinstance(self._leases, LocalLeases)
        for broadcast in await self._store.list():
            # one node without Redis: every broadcast is this node's (whatever node id it was live under)
            if broadcast.status in (Status.LIVE, Status.RECONNECTING) and \
                    (alone or broadcast.origin == self._config.node_id):
                await self._resume(broadcast)
        # replays of broadcasts this node had live when it died and did not resume (ended meanwhile, or
        # taken over by another node): their playlists end here, from the segment journals
        ended = await asyncio.to_thread(end_leftover_replays, self._config.hls_dir, set(self._sessions))
        for broadcast_id, renditions in ended.items():
            log.info("broadcast %s: playlists a previous run left live ended as a replay (%s)", broadcast_id,
                     ", ".join(renditions))
        self._ticker = asyncio.create_task(self._tick(), name="live-stats")
        if not alone:
            keeper = LeaseKeeper(self._leases, self._store, self, self._config.node_id)
            self._keeper = asyncio.create_task(keeper.run(), name="live-leases")

    async def close(self) -> None:
        for task in (self._ticker, self._keeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._ticker = self._keeper = None
        for broadcast_id in list(self._sessions):
            await self.end(broadcast_id, "node shutting down")

    def serves(self, broadcast_id: str) -> bool:
        """Whether this node has a session (live or in its grace) for the broadcast."""
        return broadcast_id in self._sessions

    def served(self) -> dict[str, bool]:
        """Each broadcast this node has a session for -> whether its publisher is connected."""
        return {broadcast_id: s.publisher is not None for broadcast_id, s in self._sessions.items()}

    async def _resume(self, broadcast: Broadcast) -> None:
        """The node stopped while the broadcast was live here: wait for its publisher again."""
        taken = await self._leases.acquire(broadcast.id)
        if not taken.held:
            log.info("broadcast %s was %s here when the node stopped; now %s holds it", broadcast.id,
                     broadcast.status.value, taken.previous)
            return
        session = await self._open_session(broadcast.id)
        await self._set_status(broadcast.id, Status.RECONNECTING)
        session.grace_task = asyncio.create_task(self._grace(session), name=f"grace-{broadcast.id}")
        log.info("broadcast %s was %s when the node stopped: resumed, reconnecting for %.0f s (playlists recovered "
                 "from disk)", broadcast.id, broadcast.status.value, self._config.reconnect_grace)

    async def _open_session(self, broadcast_id: str) -> LiveSession:
        pipeline = self._pipeline_factory(broadcast_id, self._config.hls_dir / broadcast_id)
        pipeline.on_segment = lambda rendition, seq, duration, b=broadcast_id: \
            self._metrics.segments_written.labels(b, rendition).inc()
        pipeline.health.counters = self._metrics
        await pipeline.start()
        session = LiveSession(broadcast_id, pipeline)
        session.tap = self._taps.open(broadcast_id) if self._taps is not None else None
        self._sessions[broadcast_id] = session
        return session

    # --- IngestHub ------------------------------------------------------------

    async def open_publish(self, stream_key: str, *, protocol: str, remote: str,
                           disconnect: Callable[[], None] | None = None) -> PublisherSink:
        async with self._lock:
            broadcast = await self._authorise(stream_key, protocol, remote)
            session = self._sessions.get(broadcast.id)
            if session is not None and session.publisher is not None:
                self.record_refusal(protocol, "already_live")
                log.warning("publish refused for %s from %s over %s: already live", broadcast.id, remote, protocol)
                raise PublishRefused("already_live", f"broadcast {broadcast.id} already has a publisher")
            if session is None:
                taken = await self._leases.acquire(broadcast.id)
                if not taken.held:
                    self.record_refusal(protocol, "already_live")
                    raise PublishRefused("already_live", f"broadcast {broadcast.id} is live on another node")
                if taken.reclaimed:
                    log.info("broadcast %s: its node is gone (%s); its publisher continues here", broadcast.id,
                             taken.previous)
                session = await self._open_session(broadcast.id)
                resumed = False
            else:
                assert session.grace_task is not None
                session.grace_task.cancel()
                session.grace_task = None
                session.pipeline.mark_discontinuity()
                if session.tap is not None:
                    session.tap.discontinuity()
                resumed = True
            sink = PublisherSink(self._publisher_gone, session, disconnect, stream_key)
            session.publisher = sink
            session.stats = IngestStats(protocol=protocol, remote=remote)
            await self._set_status(broadcast.id, Status.LIVE)
            self._metrics.publishes.labels(protocol).inc()
            self._metrics.live_broadcasts.set(self._live_count())
            log.info("publish accepted for %s from %s over %s (key %s)%s", broadcast.id, remote, protocol,
                     redact(stream_key), ", resuming after reconnect" if resumed else "")
            return sink

    async def check_key(self, stream_key: str, *, protocol: str, remote: str) -> None:
        await self._authorise(stream_key, protocol, remote)

    def record_refusal(self, protocol: str, reason: str) -> None:
        self._metrics.publish_refused.labels(protocol, reason).inc()

    async def _authorise(self, stream_key: str, protocol: str, remote: str) -> Broadcast:
        broadcast_id = broadcast_id_from_key(stream_key)
        broadcast = await self._store.get(broadcast_id) if broadcast_id else None
        if broadcast is None or not secret_matches(broadcast.stream_key, stream_key):
            self.record_refusal(protocol, "bad_key")
            log.warning("publish refused from %s over %s: unknown stream key %s", remote, protocol, redact(stream_key))
            raise PublishRefused("bad_key", "unknown stream key")
        if broadcast.status is Status.ENDED:
            self.record_refusal(protocol, "ended")
            log.warning("publish refused for %s from %s over %s: broadcast has ended", broadcast.id, remote, protocol)
            raise PublishRefused("ended", f"broadcast {broadcast.id} has ended")
        return broadcast

    def publishers(self) -> dict[str, PublisherSink]:
        """Broadcast id -> its publisher on this node."""
        return {bid: s.publisher for bid, s in self._sessions.items() if s.publisher is not None}

    # --- publisher gone, grace, end -------------------------------------------

    async def _publisher_gone(self, session: LiveSession, sink: PublisherSink, reason: str) -> None:
        async with self._lock:
            if session.publisher is not sink or self._sessions.get(session.broadcast_id) is not session:
                return
            session.publisher = None
            self._metrics.live_broadcasts.set(self._live_count())
            log.info("publisher of %s gone (%s): reconnecting, grace %.0f s", session.broadcast_id, reason,
                     self._config.reconnect_grace)
            await self._set_status(session.broadcast_id, Status.RECONNECTING)
            session.grace_task = asyncio.create_task(self._grace(session), name=f"grace-{session.broadcast_id}")

    async def _grace(self, session: LiveSession) -> None:
        await asyncio.sleep(self._config.reconnect_grace)
        # the grace task must not cancel itself from inside end()
        session.grace_task = None
        await self.end(session.broadcast_id, "publisher did not come back")

    async def end(self, broadcast_id: str, reason: str, *, flush: bool = True, record: bool = True) -> bool:
        """End a broadcast now.  Returns False if it was not live here.

        ``flush=False`` (a force-end) does not wait for the worker to flush;
        ``record=False`` (the lease now belongs to another node) leaves the
        registry and the lease alone.
        """
        async with self._lock:
            session = self._sessions.pop(broadcast_id, None)
            if session is None:
                return False
            if session.grace_task is not None:
                session.grace_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await session.grace_task
            publisher, session.publisher = session.publisher, None
            if publisher is not None:
                publisher.disconnect()
                publisher.closed = True
            self._metrics.live_broadcasts.set(self._live_count())
            self._metrics.forget(broadcast_id)
        if session.tap is not None:  # every simulcast target ends cleanly (deleteStream)
            await session.tap.close()
        try:
            await session.pipeline.finish(flush=flush)
        except Exception:  # a broken worker must not keep the broadcast from ending
            log.exception("finishing the HLS output of %s failed", broadcast_id)
            await session.pipeline.close()
        if record:
            await self._set_status(broadcast_id, Status.ENDED)
            try:
                await self._leases.release(broadcast_id)
            except RedisError as exc:  # the lease expires by itself
                log.warning("broadcast %s: releasing its lease failed: %s", broadcast_id, exc)
        log.info("broadcast %s ended: %s", broadcast_id, reason)
        return True

    async def force_end(self, broadcast_id: str) -> None:
        """An admin ends the broadcast whatever its state and wherever it is live."""
        if await self.end(broadcast_id, "force-ended through the API", flush=False):
            return
        await self._leases.revoke(broadcast_id)  # its node, if alive, stops at its next renewal
        broadcast = await self._store.get(broadcast_id)
        if broadcast is not None and broadcast.status is not Status.ENDED:
            await self._store.put(with_status(broadcast, Status.ENDED))
            self.announce(with_status(broadcast, Status.ENDED))
            log.info("broadcast %s force-ended through the API (it was %s, node %s)", broadcast_id,
                     broadcast.status.value, broadcast.origin or "?")

    # --- reading --------------------------------------------------------------

    def live_info(self, broadcast_id: str) -> dict[str, object] | None:
        session = self._sessions.get(broadcast_id)
        if session is None:
            return None
        stats = session.stats
        pstats = session.pipeline.stats
        return {
            "protocol": stats.protocol,
            "video_codec": stats.video_codec,
            "audio_codec": stats.audio_codec,
            "width": stats.width or getattr(pstats, "source_width", None),
            "height": stats.height or getattr(pstats, "source_height", None),
            "fps": round(stats.fps, 2),
            "bitrate": int(stats.bitrate),
            "keyframe_interval": stats.keyframe_interval,
            "bitrate_samples": [int(b) for b in stats.recent_bitrates],
            "uptime": round(time.time() - session.live_since, 1),
            "transcoder": {
                "realtime_factor": getattr(pstats, "realtime_factor", None),
                "segments_written": getattr(pstats, "segments_written", None),
                "restarts": getattr(pstats, "restarts", None),
                "dropped_units": getattr(pstats, "dropped_units", None),
                "worker_pid": getattr(pstats, "worker_pid", None),
                "worker_failures": getattr(pstats, "worker_failures", None),
                # what the repair stage fixed in the publisher's media, and what the worker dropped
                # after a libav error, by kind (node-wide: onair_media_repairs_total and
                # onair_transcoder_packet_errors_total in /metrics)
                "repairs": dict(session.pipeline.health.repairs),
                "packets_dropped": dict(session.pipeline.health.packets_dropped),
            },
            # seconds from the arrival of a part's (LL-HLS) or segment's newest video frame to the
            # playlist write that lists it: the node's share of the viewers' latency
            "publish_to_playlist": {
                "last": getattr(pstats, "delay_last", None),
                "p50": getattr(pstats, "delay_p50", None),
                "max": getattr(pstats, "delay_max", None),
            },
            "hls_variant": self._config.hls_variant,
        }

    def _live_count(self) -> int:
        return sum(1 for s in self._sessions.values() if s.publisher is not None)

    async def _set_status(self, broadcast_id: str, status: Status) -> None:
        broadcast = await self._store.get(broadcast_id)
        if broadcast is None:
            return
        updated = with_status(broadcast, status)
        if status is Status.LIVE:
            updated = replace(updated, origin=self._config.node_id)
        await self._store.put(updated)
        if broadcast.status is not status:
            self.announce(updated)

    def announce(self, broadcast: Broadcast) -> None:
        """Tell the status listener (if any) of the status ``broadcast`` now has."""
        if self.status_listener is not None:
            self.status_listener(broadcast)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for broadcast_id, session in list(self._sessions.items()):
                if session.publisher is None:
                    continue
                session.stats.roll()
                self._metrics.ingest_bitrate.labels(broadcast_id).set(session.stats.bitrate)
                self._metrics.ingest_fps.labels(broadcast_id).set(session.stats.fps)
                speed = getattr(session.pipeline.stats, "realtime_factor", None)
                if speed is not None:
                    self._metrics.transcoder_speed.labels(broadcast_id).set(speed)
