"""Redis bus: fan-out over (sharded) pub/sub and chat state every node shares.

Pub/sub runs on one dedicated connection owned by a reader task.  When Redis
goes away the task reconnects with backoff and resubscribes every channel by
itself; the subscriptions stay the same objects and get a ``GAP`` message
so the relay can backfill what it missed.  Commands go through the normal
client (it reconnects per call); while Redis is down they raise
``BusUnavailable``.

Keys carry the broadcast id as a hash tag (``{id}``) so each broadcast's keys
and channel live in one cluster slot, which the Lua scripts need.  Comment
ordering: one script does INCR (seeded from the clock when the key is missing,
so seq keeps growing after a Redis restart without persistence) + RPUSH/LTRIM
+ (S)PUBLISH, so the publish order *is* the seq order on every node.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from broadcaster.bus.base import (DEFAULT_QUEUE, Admission, Banned, BusUnavailable, Held, PresenceCount,
                                  PresenceUpdate, Subscription)
from broadcaster.bus.memory import seq_seed
from broadcaster.bus.redis_scripts import ADD_REACTIONS, FORGET, POST_COMMENT
from broadcaster.bus.redis_viewers import RedisViewers
from broadcaster.storage import text
from moderation.bans import BanRecord

log = logging.getLogger("onair.bus.redis")

T = TypeVar("T")

#: how long the reader waits for a message before it applies (un)subscriptions
_POLL = 0.1


class RedisBus:
    def __init__(self, url: str, *, prefix: str = "onair:chat:", history_size: int = 50,
                 retention: float = 7 * 24 * 3600.0, max_connections: int = 64, redis: Redis | None = None) -> None:
        """``redis``: the node's client (``broadcaster/storage.py``), which the bus then uses and does
        not close; without it the bus opens its own pool for ``url``."""
        self.url = url
        self.prefix = prefix
        self.history_size = history_size
        self.retention = max(1, int(retention))
        # A blocking pool: a join storm waits for a connection instead of failing
        # with "Too many connections" (the default pool raises past 100).
        self._owns_redis = redis is None
        if redis is None:
            pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=5,
                                                   socket_connect_timeout=2, socket_timeout=5, socket_keepalive=True)
            redis = Redis(connection_pool=pool)
        self._redis = redis
        self._post = self._redis.register_script(POST_COMMENT)
        self._react = self._redis.register_script(ADD_REACTIONS)
        self._forget = self._redis.register_script(FORGET)
        self._viewers = RedisViewers(self._redis, self._key, self._call, self.retention, prefix)
        self._publish_cmd = "PUBLISH"
        self._subs: dict[str, set[Subscription]] = {}
        self._ready: dict[str, asyncio.Event] = {}
        self._reader: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.reconnects = 0
        self._stopping = False

    # --- life ---------------------------------------------------------------------
    async def start(self) -> None:
        info = await self._call(lambda: self._redis.info("server"))
        major = int(str(info.get("redis_version", "0")).split(".")[0])
        # Sharded pub/sub (Redis 7+) keeps a channel's traffic on its slot's shard.
        self._publish_cmd = "SPUBLISH" if major >= 7 else "PUBLISH"
        self._reader = asyncio.create_task(self._read_loop(), name="redis-bus-reader")

    async def close(self) -> None:
        if self._reader is not None:
            # Ask the reader to stop (it looks every _POLL seconds) rather than
            # cancel it: redis-py can swallow a cancellation that lands inside
            # get_message(timeout=...), which would leave close() waiting forever.
            self._stopping = True
            self._wake.set()
            done, _ = await asyncio.wait([self._reader], timeout=2)
            if not done:
                self._reader.cancel()
                done, _ = await asyncio.wait([self._reader], timeout=2)
                if not done:
                    log.error("redis bus: the reader did not stop")
            self._reader = None
        if self._owns_redis:
            await self._redis.aclose()

    @property
    def sharded(self) -> bool:
        return self._publish_cmd == "SPUBLISH"

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise BusUnavailable(f"redis unavailable: {exc}") from None

    def _key(self, broadcast_id: str, name: str) -> str:
        return f"{self.prefix}{{{broadcast_id}}}:{name}"

    def _channel(self, channel: str) -> str:
        return self.prefix + channel

    # --- pub/sub -------------------------------------------------------------------
    async def publish(self, channel: str, data: bytes) -> None:
        await self._call(lambda: self._redis.execute_command(self._publish_cmd, self._channel(channel), data))

    @asynccontextmanager
    async def subscribe(self, channel: str, maxsize: int = DEFAULT_QUEUE) -> AsyncIterator[Subscription]:
        full = self._channel(channel)
        sub = Subscription(channel, maxsize)
        subs = self._subs.setdefault(full, set())
        subs.add(sub)
        ready = self._ready.setdefault(full, asyncio.Event())
        self._wake.set()
        try:
            # Wait for the server's confirmation, so a caller that reads state
            # next cannot miss a message published in between.  If Redis is down
            # the subscription still exists and is made when it comes back.
            try:
                await asyncio.wait_for(ready.wait(), 5)
            except asyncio.TimeoutError:
                log.warning("subscription to %s not confirmed yet (Redis down?)", channel)
            yield sub
        finally:
            subs.discard(sub)
            if not subs:
                self._subs.pop(full, None)
                self._ready.pop(full, None)
                self._wake.set()

    async def _command(self, pubsub: PubSub, verb: str, channels: list[str]) -> None:
        if not channels:
            return
        if self.sharded:
            if verb == "sub":
                await pubsub.ssubscribe(*channels)
            else:
                await pubsub.sunsubscribe(*channels)
        elif verb == "sub":
            await pubsub.subscribe(*channels)
        else:
            await pubsub.unsubscribe(*channels)

    async def _read_loop(self) -> None:
        backoff = 0.05
        connected_before = False
        down_since: float | None = None
        while not self._stopping:
            pubsub = self._redis.pubsub()
            subscribed: set[str] = set()
            try:
                await pubsub.connect()
                if connected_before:
                    self.reconnects += 1
                    log.info("redis bus: reconnected after %.1f s, resubscribing %d channels",
                             time.monotonic() - (down_since or time.monotonic()), len(self._subs))
                connected_before = True
                down_since = None
                backoff = 0.05
                first_round = True
                while not self._stopping:
                    wanted = set(self._subs)
                    await self._command(pubsub, "sub", sorted(wanted - subscribed))
                    await self._command(pubsub, "unsub", sorted(subscribed - wanted))
                    subscribed = wanted
                    self._wake.clear()
                    if first_round and self.reconnects:
                        # Anything published while we were away is missing: tell readers.
                        for subs in self._subs.values():
                            for sub in subs:
                                sub.notify_gap()
                    first_round = False
                    # Drain what is there; come back to (un)subscribe at least every _POLL.
                    while not self._wake.is_set():
                        message = await pubsub.get_message(timeout=_POLL)
                        if message is None:
                            break
                        self._dispatch(message)
                await self._close_pubsub(pubsub)
            except asyncio.CancelledError:
                await self._close_pubsub(pubsub)
                raise
            except (RedisError, OSError) as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("redis bus: connection lost (%s); reconnecting", exc)
                for ready in self._ready.values():
                    ready.clear()
                await self._close_pubsub(pubsub)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
                continue
            except Exception:
                # Never let the reader die: log and start over.
                log.exception("redis bus: unexpected error in the reader; restarting it")
                await self._close_pubsub(pubsub)
                await asyncio.sleep(0.5)

    async def _close_pubsub(self, pubsub: PubSub) -> None:
        try:
            await asyncio.wait_for(pubsub.aclose(), 1)
        except Exception:  # the connection is already broken; nothing to release
            pass

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind in ("message", "smessage"):
            for sub in list(self._subs.get(name, ())):
                sub.deliver(message["data"])
        elif kind in ("subscribe", "ssubscribe"):
            ready = self._ready.get(name)
            if ready is not None:
                ready.set()

    # --- comments ----------------------------------------------------------------
    async def post_comment(self, broadcast_id: str, channel: str, body: bytes, author_id: str | None = None,
                           address: str | None = None) -> int:
        keys = [self._key(broadcast_id, "seq"), self._key(broadcast_id, "hist")]
        if author_id is not None:
            keys.append(self._key(broadcast_id, "ban:" + author_id))
            if address:
                keys.append(self._key(broadcast_id, "banaddr:" + address))
        args: list[bytes | str | int | float] = [body, self._channel(channel), self.history_size, self.retention,
                                                 seq_seed(), self._publish_cmd]
        seq = int(await self._call(lambda: self._post(keys=keys, args=args)))
        if seq == 0:  # (seqs start from the clock, never at 0)
            raise Banned(author_id)
        return seq

    async def last_seq(self, broadcast_id: str) -> int:
        raw = await self._call(lambda: self._redis.get(self._key(broadcast_id, "seq")))
        return int(raw) if raw else 0

    async def history(self, broadcast_id: str) -> list[dict[str, Any]]:
        async def run() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                self._queue_history(pipe, broadcast_id)
                return await pipe.execute()
        return self._history(*await self._call(run))

    def _queue_history(self, pipe: Any, broadcast_id: str) -> None:
        pipe.lrange(self._key(broadcast_id, "hist"), 0, -1)
        pipe.smembers(self._key(broadcast_id, "removed"))

    @staticmethod
    def _history(raw: list[bytes], removed_raw: set[bytes]) -> list[dict[str, Any]]:
        removed = {r.decode() for r in removed_raw}
        out = []
        for item in raw:
            comment = json.loads(item)
            if comment.get("id") in removed:
                comment["removed"] = True
            out.append(comment)
        return out

    async def remove_comment(self, broadcast_id: str, comment_id: str) -> bool:
        key = self._key(broadcast_id, "removed")

        async def run() -> list[Any]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(key, comment_id)
                pipe.expire(key, self.retention)
                return await pipe.execute()
        added, _ = await self._call(run)
        return bool(added)

    async def forget_comments(self, broadcast_id: str, comment_ids: list[str]) -> int:
        if not comment_ids:
            return 0
        keys = [self._key(broadcast_id, "hist")]
        return int(await self._call(lambda: self._forget(keys=keys, args=list(comment_ids))))

    async def erase_history(self, broadcast_id: str) -> None:
        await self._call(lambda: self._redis.delete(*(self._key(broadcast_id, name) for name in
                                                      ("hist", "removed", "reactions", "pinned"))))

    # --- reactions -----------------------------------------------------------------
    async def add_reactions(self, broadcast_id: str, channel: str, counts: dict[str, int], node_id: str) -> dict[str, int]:
        args: list[Any] = [self._channel(channel), self._publish_cmd, node_id]
        for kind, n in counts.items():
            args += [kind, n]
        raw = await self._call(lambda: self._react(keys=[self._key(broadcast_id, "reactions")], args=args))
        return dict(json.loads(raw)["totals"])

    async def reaction_totals(self, broadcast_id: str) -> dict[str, int]:
        raw = await self._call(lambda: self._redis.hgetall(self._key(broadcast_id, "reactions")))
        return {text(k): int(v) for k, v in raw.items()}

    # --- moderation state ----------------------------------------------------------------
    async def ban(self, record: BanRecord) -> None:
        await self._viewers.ban(record)

    async def unban(self, broadcast_id: str, viewer_id: str) -> bool:
        return await self._viewers.unban(broadcast_id, viewer_id)

    async def bans(self, broadcast_id: str | None = None) -> list[BanRecord]:
        return await self._viewers.bans(broadcast_id)

    async def is_banned(self, broadcast_id: str, viewer_id: str) -> bool:
        return bool(await self._call(lambda: self._redis.exists(self._key(broadcast_id, "ban:" + viewer_id))))

    async def admit(self, broadcast_id: str, viewer_id: str, address: str) -> Admission:
        return await self._viewers.admit(broadcast_id, viewer_id, address)

    async def admit_with_history(self, broadcast_id: str, viewer_id: str,
                                 address: str) -> tuple[Admission, list[dict[str, Any]]]:
        async def run() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                self._viewers.queue_admit(pipe, broadcast_id, viewer_id, address)
                self._queue_history(pipe, broadcast_id)
                return await pipe.execute()
        replies = await self._call(run)
        return self._viewers.admission(replies[:3]), self._history(*replies[3:])

    async def address_of(self, broadcast_id: str, viewer_id: str) -> str | None:
        return await self._viewers.address_of(broadcast_id, viewer_id)

    async def hold(self, broadcast_id: str, held: Held) -> None:
        await self._call(lambda: self._redis.hset(self._key(broadcast_id, "held"), held.id, json.dumps(held.comment)))

    async def take_held(self, broadcast_id: str, held_id: str) -> Held | None:
        key = self._key(broadcast_id, "held")

        async def run() -> list[Any]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(key, held_id)
                pipe.hdel(key, held_id)
                return await pipe.execute()
        raw, deleted = await self._call(run)
        # Only the node whose HDEL removed it publishes it: approval is exactly-once.
        return Held(held_id, json.loads(raw)) if raw and deleted else None

    async def list_held(self, broadcast_id: str) -> list[Held]:
        raw = await self._call(lambda: self._redis.hgetall(self._key(broadcast_id, "held")))
        return [Held(text(k), json.loads(v)) for k, v in raw.items()]

    async def set_pinned(self, broadcast_id: str, comment: dict[str, Any] | None) -> None:
        key = self._key(broadcast_id, "pinned")
        if comment is None:
            await self._call(lambda: self._redis.delete(key))
        else:
            await self._call(lambda: self._redis.set(key, json.dumps(comment), ex=self.retention))

    async def pinned(self, broadcast_id: str) -> dict[str, Any] | None:
        raw = await self._call(lambda: self._redis.get(self._key(broadcast_id, "pinned")))
        return json.loads(raw) if raw else None

    # --- presence ------------------------------------------------------------------------
    async def sync_presence(self, node_id: str, updates: list[PresenceUpdate],
                            ttl: float) -> dict[str, PresenceCount]:
        return await self._viewers.sync_presence(node_id, updates, ttl)

    async def cluster_secret(self, candidate: bytes) -> bytes:
        key = self.prefix + "secret"
        # SET NX: the first node's secret wins; also re-run by the relay after a
        # Redis restart so the secret survives it.
        await self._call(lambda: self._redis.set(key, candidate.hex(), nx=True))
        raw = await self._call(lambda: self._redis.get(key))
        return bytes.fromhex(text(raw)) if raw else candidate
