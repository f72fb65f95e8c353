"""Webhook endpoints and pending deliveries in Redis, shared by every node of a cluster.

Keys (prefix ``onair:webhooks:``): ``endpoints`` (hash id -> JSON),
``q:<endpoint>|<broadcast>`` (list of events, oldest first), ``due`` (sorted
set: queue -> when its head may be tried), ``attempts`` (hash queue -> tries
of its head), ``claim:<queue>`` (which node is trying it, with an expiry: a
node that dies mid-delivery lets another take over), ``log:<endpoint>``
(the last attempts).  Each multi-key step is one Lua script, so a queue
emptied while an event is appended is never forgotten.  A claimed queue is
tried by one node only: each event is delivered once per cluster (at least
once: a node that dies after the receiver answered but before recording it
has the event sent again).
"""

from __future__ import annotations

import secrets
import time

from redis.asyncio import Redis

from broadcaster.webhooks.events import WebhookEvent
from broadcaster.webhooks.store import LOG_SIZE, MAX_PENDING, Attempt, Endpoint

P = "onair:webhooks:"

_ENQUEUE = """
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[3])
return 1
"""

# KEYS: queue list, due, attempts, claim; ARGV: message id, now, queue name, claim token
_DELIVERED = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and cjson.decode(head)['id'] == ARGV[1] then redis.call('LPOP', KEYS[1]) end
redis.call('HDEL', KEYS[3], ARGV[3])
if redis.call('LLEN', KEYS[1]) > 0 then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
else redis.call('ZREM', KEYS[2], ARGV[3]) end
if redis.call('GET', KEYS[4]) == ARGV[4] then redis.call('DEL', KEYS[4]) end
return 1
"""

# KEYS: due, attempts, claim; ARGV: due time, queue name, claim token
_RETRY = """
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
return 1
"""


class RedisWebhookStore:
    def __init__(self, redis: Redis, *, claim_seconds: float = 60.0) -> None:
        self._redis = redis
        self._token = secrets.token_hex(8)  # this node's claims
        self._claim_ms = int(claim_seconds * 1000)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._delivered = redis.register_script(_DELIVERED)
        self._retry = redis.register_script(_RETRY)

    async def open(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        """The client belongs to the node."""

    async def add_endpoint(self, endpoint: Endpoint) -> None:
        await self._redis.hset(P + "endpoints", endpoint.id, endpoint.to_json())

    async def endpoints(self) -> list[Endpoint]:
        docs = await self._redis.hvals(P + "endpoints")
        return sorted((Endpoint.from_json(d) for d in docs), key=lambda e: e.created_at)

    async def remove_endpoint(self, endpoint_id: str) -> bool:
        return bool(await self._redis.hdel(P + "endpoints", endpoint_id))

    async def enqueue(self, endpoint_ids: list[str], event: WebhookEvent) -> list[str]:
        raw = event.to_json()
        full: list[str] = []
        for endpoint_id in endpoint_ids:
            queue = f"{endpoint_id}|{event.broadcast_id}"
            if not await self._enqueue(keys=[P + "q:" + queue, P + "due"], args=[raw, time.time(), queue, MAX_PENDING]):
                full.append(endpoint_id)
        return full

    async def claim(self, now: float, limit: int) -> list[str]:
        due = await self._redis.zrangebyscore(P + "due", "-inf", now, start=0, num=limit * 4)
        taken: list[str] = []
        for raw in due:
            queue = raw.decode() if isinstance(raw, bytes) else str(raw)
            if await self._redis.set(P + "claim:" + queue, self._token, nx=True, px=self._claim_ms):
                taken.append(queue)
                if len(taken) >= limit:
                    break
        return taken

    async def head(self, queue: str) -> tuple[WebhookEvent, int] | None:
        raw = await self._redis.lindex(P + "q:" + queue, 0)
        if raw is None:
            return None
        attempts = await self._redis.hget(P + "attempts", queue)
        return WebhookEvent.from_json(raw), int(attempts or 0)

    async def delivered(self, queue: str, message_id: str) -> None:
        await self._delivered(keys=[P + "q:" + queue, P + "due", P + "attempts", P + "claim:" + queue],
                              args=[message_id, time.time(), queue, self._token])

    async def retry(self, queue: str, due: float) -> None:
        await self._retry(keys=[P + "due", P + "attempts", P + "claim:" + queue], args=[due, queue, self._token])

    async def drop(self, queue: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(P + "q:" + queue, P + "claim:" + queue)
            pipe.zrem(P + "due", queue)
            pipe.hdel(P + "attempts", queue)
            await pipe.execute()

    async def log(self, endpoint_id: str, attempt: Attempt) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(P + "log:" + endpoint_id, attempt.to_json())
            pipe.ltrim(P + "log:" + endpoint_id, 0, LOG_SIZE - 1)
            await pipe.execute()

    async def deliveries(self, endpoint_id: str) -> list[dict[str, object]]:
        import json

        return [json.loads(raw) for raw in await self._redis.lrange(P + "log:" + endpoint_id, 0, LOG_SIZE - 1)]
