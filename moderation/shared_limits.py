"""Per-viewer limits every node must agree on: slow mode, the spam rate limit and duplicates.

The pipeline's filters keep this state in the node's memory, which is exact
for one node.  With many nodes on one Redis a viewer could spread its comments
over the nodes, so ``RedisSharedLimits`` checks the same three limits against
state in Redis, in one atomic script per comment (one round trip), before the
pipeline runs (``screening.CommentScreen``).  The semantics are the filters':
a comment refused by slow mode does not restart the wait; every attempt counts
for the rate limit; duplicates compare ``spam.duplicate_signature`` within
the window.  ``NodeLocal`` is the single-node case: nothing to add to the
filters.

Keys (prefix, then the broadcast's hash tag): ``slow:{b}:<viewer>`` (PX = the
slow-mode interval), ``rate:{b}:<viewer>`` (sorted set of attempt times),
``dup:{b}:<viewer>`` (hash signature -> time), each expiring with its window.
"""

from __future__ import annotations

import secrets
import time
from typing import Protocol

from redis.asyncio import Redis

from .context import CommentContext
from .filters.spam import MAX_REMEMBERED_TEXTS, duplicate_signature
from .settings import ModerationSettings
from .verdict import Action, FilterResult

__all__ = ["NodeLocal", "RedisSharedLimits", "SharedLimits"]

# ARGV: now ms, slow ms, rate count, rate window ms, attempt id, signature, duplicate window ms, max texts
_CHECK = """
local now = tonumber(ARGV[1])
local slow = tonumber(ARGV[2])
if slow > 0 and not redis.call('SET', KEYS[1], now, 'PX', slow, 'NX') then
  return 'slow_mode'
end
local count, window = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local before = redis.call('ZCARD', KEYS[2])
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(count + 2))
redis.call('PEXPIRE', KEYS[2], window)
if before >= count then
  return 'rate_limited'
end
if ARGV[6] == '' then
  return false
end
local dupwin = tonumber(ARGV[7])
local at = tonumber(redis.call('HGET', KEYS[3], ARGV[6]) or '')
redis.call('HSET', KEYS[3], ARGV[6], now)
local flat = redis.call('HGETALL', KEYS[3])
if #flat > 2 * tonumber(ARGV[8]) then
  local oldest, oldest_at = nil, nil
  for i = 1, #flat, 2 do
    local t = tonumber(flat[i + 1])
    if now - t >= dupwin then
      redis.call('HDEL', KEYS[3], flat[i])
    elseif oldest_at == nil or t < oldest_at then
      oldest, oldest_at = flat[i], t
    end
  end
  if redis.call('HLEN', KEYS[3]) > tonumber(ARGV[8]) and oldest then redis.call('HDEL', KEYS[3], oldest) end
end
redis.call('PEXPIRE', KEYS[3], dupwin)
if at and now - at < dupwin then
  return 'duplicate'
end
return false
"""

_FILTER = {"slow_mode": "slow_mode", "rate_limited": "spam", "duplicate": "spam"}


class SharedLimits(Protocol):
    async def check(self, ctx: CommentContext, settings: ModerationSettings) -> tuple[str, FilterResult] | None:
        """(filter name, its finding) when a shared limit refuses the comment."""


class NodeLocal:
    """One node: the pipeline's own filters hold all there is."""

    async def check(self, ctx: CommentContext, settings: ModerationSettings) -> tuple[str, FilterResult] | None:
        return None


class RedisSharedLimits:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.prefix = prefix
        self._check = redis.register_script(_CHECK)

    async def check(self, ctx: CommentContext, settings: ModerationSettings) -> tuple[str, FilterResult] | None:
        tag = f"{{{ctx.broadcast_id}}}:{ctx.viewer_id}"
        keys = [f"{self.prefix}slow:{tag}", f"{self.prefix}rate:{tag}", f"{self.prefix}dup:{tag}"]
        args: list[str | int] = [int(time.time() * 1000), int(settings.slow_mode_seconds * 1000), settings.rate_limit_count,
                max(1, int(settings.rate_limit_window * 1000)), secrets.token_hex(6), duplicate_signature(ctx),
                max(1, int(settings.duplicate_window * 1000)), MAX_REMEMBERED_TEXTS]
        reason = await self._check(keys=keys, args=args)
        if not reason:
            return None
        reason = reason.decode() if isinstance(reason, bytes) else str(reason)
        return _FILTER[reason], FilterResult(Action.REJECT, reason)
