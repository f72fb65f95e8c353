"""The Redis bus' state about viewers: bans (also by address), admission, presence by identity.

Keys, under the bus prefix and the broadcast's hash tag ``{b}`` (one cluster
slot per broadcast; the scripts build the names of sibling keys of the same
broadcast, which stay in that slot):

    ban:<viewer>        the ban: JSON ``moderation.bans.BanRecord``  (TTL for a timeout; before the
                        record moved here: "ban" | "timeout" [+ " " + address key], still read)
    banaddr:<address>   the viewer whose ban covers the address   (same TTL)
    bans                set of the viewers with a ban key (pruned when listed)
    addr:<viewer>       the address key the viewer last joined from (the chat retention)
    viewers             hash node -> "<identities>:<expires ms>"
    present:<node>      set of the identities that node has viewers of (TTL: presence ttl)

and ``ban-broadcasts`` (no hash tag): the broadcasts that have had bans, for listing all of them.

Address keys are keyed hashes (``broadcaster.chat.quotas.address_key``), never addresses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis

from broadcaster.bus.base import Admission, PresenceCount, PresenceUpdate
from broadcaster.storage import text
from moderation.bans import BanRecord

T = TypeVar("T")

# the address key an old ban value names (a JSON record, or the format from before: "kind[ address]")
_OLD_ADDRESS = """
local function old_address(old)
  if not old then return nil end
  if string.sub(old, 1, 1) == '{' then
    local ok, doc = pcall(cjson.decode, old)
    if ok and type(doc) == 'table' and type(doc['address_key']) == 'string' then return doc['address_key'] end
    return nil
  end
  local sp = string.find(old, ' ', 1, true)
  if sp then return string.sub(old, sp + 1) end
  return nil
end
"""

# KEYS: ban:<viewer>, bans; ARGV: record JSON, seconds (0: none), address key ('' none), banaddr key prefix, viewer
_BAN = _OLD_ADDRESS + """
local addr = old_address(redis.call('GET', KEYS[1]))
if addr then redis.call('DEL', ARGV[4] .. addr) end
local seconds = tonumber(ARGV[2])
if seconds > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', seconds)
  if ARGV[3] ~= '' then redis.call('SET', ARGV[4] .. ARGV[3], ARGV[5], 'EX', seconds) end
else
  redis.call('SET', KEYS[1], ARGV[1])
  if ARGV[3] ~= '' then redis.call('SET', ARGV[4] .. ARGV[3], ARGV[5]) end
end
redis.call('SADD', KEYS[2], ARGV[5])
return 1
"""

# KEYS: ban:<viewer>, bans; ARGV: banaddr key prefix, viewer
_UNBAN = _OLD_ADDRESS + """
local old = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
local addr = old_address(old)
if addr then redis.call('DEL', ARGV[1] .. addr) end
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
                 retention: int, prefix: str) -> None:
        self._key = key
        self._banned_broadcasts = prefix + "ban-broadcasts"
        self._call = call
        self.retention = retention
        self._ban = redis.register_script(_BAN)
        self._unban = redis.register_script(_UNBAN)
        self._presence = redis.register_script(_PRESENCE)
        self._redis = redis

    async def ban(self, record: BanRecord) -> None:
        bid = record.broadcast_id
        keys = [self._key(bid, "ban:" + record.viewer_id), self._key(bid, "bans")]
        args: list[str | int] = [json.dumps(record.to_dict()), record.seconds_left(time.time()), record.address_key or "",
                self._key(bid, "banaddr:"), record.viewer_id]
        await self._call(lambda: self._ban(keys=keys, args=args))
        await self._call(lambda: self._redis.sadd(self._banned_broadcasts, bid))

    async def unban(self, broadcast_id: str, viewer_id: str) -> bool:
        keys = [self._key(broadcast_id, "ban:" + viewer_id), self._key(broadcast_id, "bans")]
        args = [self._key(broadcast_id, "banaddr:"), viewer_id]
        return bool(await self._call(lambda: self._unban(keys=keys, args=args)))

    async def bans(self, broadcast_id: str | None = None) -> list[BanRecord]:
        if broadcast_id is None:
            ids = sorted(text(b) for b in await self._call(lambda: self._redis.smembers(self._banned_broadcasts)))
        else:
            ids = [broadcast_id]
        out: list[BanRecord] = []
        for bid in ids:
            out += await self._broadcast_bans(bid)
        out.sort(key=lambda r: r.ts)
        return out

    async def _broadcast_bans(self, broadcast_id: str) -> list[BanRecord]:
        index = self._key(broadcast_id, "bans")
        viewers = sorted(text(v) for v in await self._call(lambda: self._redis.smembers(index)))
        if not viewers:
            return []
        raw = await self._call(lambda: self._redis.mget([self._key(broadcast_id, "ban:" + v) for v in viewers]))
        out, gone = [], []
        now = time.time()
        for viewer, value in zip(viewers, raw):
            record = _record(value) if value is not None else None
            if record is not None and record.active(now):
                out.append(record)
            elif value is None:
                gone.append(viewer)  # expired: the index forgets it
        if gone:
            await self._call(lambda: self._redis.srem(index, *gone))
        return out

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
        return Admission(_kind(ban) if ban else None, bool(blocked))

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


def _record(value: bytes | str) -> BanRecord | None:
    """A ban key's record (None for a value from before the record moved here, or a damaged one)."""
    try:
        return BanRecord.from_dict(json.loads(value))
    except ValueError:
        return None


def _kind(value: bytes | str) -> str:
    """"ban" or "timeout" from a ban key's value (a record, or the form from before)."""
    record = _record(value) if text(value).startswith("{") else None
    if record is not None:
        return record.kind
    kind = text(value).split(" ", 1)[0]
    return "timeout" if kind == "timeout" else "ban"
