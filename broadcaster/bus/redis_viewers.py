"""The Redis bus' state about viewers: bans (also by address), admission, presence by identity.

Keys, under the bus prefix and the broadcast's hash tag ``{b}`` (one cluster
slot per broadcast; the scripts build the names of sibling keys of the same
broadcast, which stay in that slot):

    ban:<viewer>        "ban" | "timeout" [+ " " + address key]   (TTL for a timeout)
    banaddr:<address>   the viewer whose ban covers the address   (same TTL)
    addr:<viewer>       the address key the viewer last joined from (the chat retention)
    viewers             hash node -> "<identities>:<expires ms>"
    present:<node>      set of the identities that node has viewers of (TTL: presence ttl)

Address keys are keyed hashes (``broadcaster.chat.quotas.address_key``), never addresses.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis

from broadcaster.bus.base import Admission, PresenceCount, PresenceUpdate

T = TypeVar("T")

# KEYS: ban:<viewer>; ARGV: kind, seconds (0: none), address key ('' none), banaddr key prefix, viewer
_BAN = """
local old = redis.call('GET', KEYS[1])
if old then
  local sp = string.find(old, ' ', 1, true)
  if sp then redis.call('DEL', ARGV[4] .. string.sub(old, sp + 1)) end
end
local value = ARGV[1]
if ARGV[3] ~= '' then value = value .. ' ' .. ARGV[3] end
local seconds = tonumber(ARGV[2])
if seconds > 0 then
  redis.call('SET', KEYS[1], value, 'EX', seconds)
  if ARGV[3] ~= '' then redis.call('SET', ARGV[4] .. ARGV[3], ARGV[5], 'EX', seconds) end
else
  redis.call('SET', KEYS[1], value)
  if ARGV[3] ~= '' then redis.call('SET', ARGV[4] .. ARGV[3], ARGV[5]) end
end
return 1
"""

# KEYS: ban:<viewer>; ARGV: banaddr key prefix
_UNBAN = """
local old = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
if old then
  local sp = string.find(old, ' ', 1, true)
  if sp then redis.call('DEL', ARGV[1] .. string.sub(old, sp + 1)) end
end
return old and 1 or 0
"""

# KEYS: viewers hash, present:<this node>
# ARGV: node, now ms, expires ms, ttl s, full, expected, n added, present key prefix, added..., removed...
_PRESENCE = """
local existed = redis.call('EXISTS', KEYS[2])
if ARGV[5] == '1' then redis.call('DEL', KEYS[2]) end
local first, n = 9, tonumber(ARGV[7])
for s = first, first + n - 1, 1000 do
  redis.call('SADD', KEYS[2], unpack(ARGV, s, math.min(s + 999, first + n - 1)))
end
for s = first + n, #ARGV, 1000 do
  redis.call('SREM', KEYS[2], unpack(ARGV, s, math.min(s + 999, #ARGV)))
end
local size = redis.call('SCARD', KEYS[2])
if size > 0 then
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) * 1000)
end
redis.call('HSET', KEYS[1], ARGV[1], size .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) * 3000)
local now = tonumber(ARGV[2])
local live = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  local expires = tonumber(string.match(flat[i + 1], ':(%d+)$')) or 0
  if expires > now then
    table.insert(live, ARGV[8] .. flat[i])
  else
    redis.call('HDEL', KEYS[1], flat[i])
    redis.call('DEL', ARGV[8] .. flat[i])
  end
end
local total = 0
if #live == 1 then
  total = redis.call('SCARD', live[1])
elseif #live > 1 then
  total = #redis.call('SUNION', unpack(live))
end
local lost = 0
if ARGV[5] == '0' and ARGV[6] == '1' and existed == 0 then lost = 1 end
return {total, lost}
"""


class RedisViewers:
    def __init__(self, redis: Redis, key: Callable[[str, str], str], call: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]],
                 retention: int) -> None:
        self._key = key
        self._call = call
        self.retention = retention
        self._ban = redis.register_script(_BAN)
        self._unban = redis.register_script(_UNBAN)
        self._presence = redis.register_script(_PRESENCE)
        self._redis = redis

    async def ban(self, broadcast_id: str, viewer_id: str, seconds: float | None, address: str | None) -> None:
        keys = [self._key(broadcast_id, "ban:" + viewer_id)]
        args = ["ban" if seconds is None else "timeout", 0 if seconds is None else max(1, int(seconds)),
                address or "", self._key(broadcast_id, "banaddr:"), viewer_id]
        await self._call(lambda: self._ban(keys=keys, args=args))

    async def unban(self, broadcast_id: str, viewer_id: str) -> None:
        keys = [self._key(broadcast_id, "ban:" + viewer_id)]
        await self._call(lambda: self._unban(keys=keys, args=[self._key(broadcast_id, "banaddr:")]))

    def queue_admit(self, pipe: Any, broadcast_id: str, viewer_id: str, address: str) -> None:
        """Queue the admission's three commands (plain ones: a script in a pipeline costs redis-py
        a SCRIPT EXISTS round trip first); ``admission`` reads their replies."""
        pipe.get(self._key(broadcast_id, "ban:" + viewer_id))
        pipe.exists(self._key(broadcast_id, "banaddr:" + address))
        pipe.set(self._key(broadcast_id, "addr:" + viewer_id), address, ex=self.retention)

    async def admit(self, broadcast_id: str, viewer_id: str, address: str) -> Admission:
        async def run() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                self.queue_admit(pipe, broadcast_id, viewer_id, address)
                return await pipe.execute()
        return self.admission(await self._call(run))

    @staticmethod
    def admission(replies: list[Any]) -> Admission:
        """From the replies of ``queue_admit``'s commands."""
        ban, blocked = replies[0], replies[1]
        kind = ban.decode().split(" ", 1)[0] if ban else None
        return Admission("ban" if kind == "1" else kind, bool(blocked))

    async def address_of(self, broadcast_id: str, viewer_id: str) -> str | None:
        raw = await self._call(lambda: self._redis.get(self._key(broadcast_id, "addr:" + viewer_id)))
        return raw.decode() if raw else None

    async def sync_presence(self, node_id: str, updates: list[PresenceUpdate],
                            ttl: float) -> dict[str, PresenceCount]:
        if not updates:
            return {}
        now_ms = int(time.time() * 1000)
        expires = now_ms + int(ttl * 1000)

        async def run() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for u in updates:
                    keys = [self._key(u.broadcast_id, "viewers"), self._key(u.broadcast_id, "present:" + node_id)]
                    args: list[str | int | float] = [node_id, now_ms, expires, ttl, int(u.full), int(u.expected), len(u.added),
                            self._key(u.broadcast_id, "present:"), *u.added, *u.removed]
                    await self._presence(keys=keys, args=args, client=pipe)
                return await pipe.execute()
        rows = await self._call(run)
        return {u.broadcast_id: PresenceCount(int(total), bool(lost)) for u, (total, lost) in zip(updates, rows)}
