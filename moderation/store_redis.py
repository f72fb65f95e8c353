"""Redis moderation store: the same state for every node of a cluster.

Keys (prefix ``onair:mod:``; the broadcast id as a hash tag keeps one
broadcast's keys on one cluster slot):

    settings:{b}            JSON ModerationSettings
    bans:{b}, ban-broadcasts   legacy: bans from before they moved to the chat state (taken once)
    epoch:{b}               viewer-token epoch (INCR)
    grant:<sha256>          JSON ModeratorGrant;  grants:{b}: hash grant id -> sha256
    audit:{b}               list of JSON AuditEntry (last MAX_AUDIT);  audit-seq:{b}: id counter
    viewer-audit:<viewer>   set of b whose audit log mentions the viewer (for erasure)
    archive:<viewer>        list of JSON ArchivedComment (last MAX_ARCHIVE), expires after the retention
    slow:|rate:|dup:{b}:<viewer>   per-viewer limits every node agrees on (shared_limits.py)
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from .bans import BanRecord
from .store import MAX_ARCHIVE, MAX_AUDIT, ArchivedComment, AuditEntry, ModeratorGrant
from .shared_limits import RedisSharedLimits
from .write_behind import WriteBehind

__all__ = ["RedisModerationStore"]

# Rewrites, in one atomic step, the entries of one audit list that concern a viewer.
_SCRUB = """
local n = 0
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i, raw in ipairs(items) do
  local e = cjson.decode(raw)
  if e['viewer_id'] == ARGV[1] and type(e['text']) == 'string' then
    e['text'] = cjson.null
    redis.call('LSET', KEYS[1], i - 1, cjson.encode(e))
    n = n + 1
  end
end
return n
"""


# KEYS[1] a viewer's archive, ARGV[1] a broadcast id: keep the other broadcasts' comments, in order
_ERASE_BROADCAST = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local kept, n = {}, 0
for _, raw in ipairs(items) do
  local ok, doc = pcall(cjson.decode, raw)
  if ok and doc['broadcast_id'] == ARGV[1] then n = n + 1 else kept[#kept + 1] = raw end
end
if n > 0 then
  local ttl = redis.call('PTTL', KEYS[1])
  redis.call('DEL', KEYS[1])
  for i = 1, #kept, 1000 do redis.call('RPUSH', KEYS[1], unpack(kept, i, math.min(i + 999, #kept))) end
  if ttl > 0 and #kept > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return n
"""


class RedisModerationStore:
    def __init__(self, url: str, *, prefix: str = "onair:mod:", retention: float = 7 * 24 * 3600.0,
                 redis: Redis | None = None) -> None:
        """``redis``: a client to use (and leave open: its owner closes it); without it the store
        opens its own for ``url``."""
        self.url = url
        self.prefix = prefix
        self.retention = retention
        self._owns_redis = redis is None
        self._redis = redis if redis is not None else Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, socket_keepalive=True, health_check_interval=5,
            retry_on_timeout=True)
        self._scrub = self._redis.register_script(_SCRUB)
        self._erase_broadcast = self._redis.register_script(_ERASE_BROADCAST)
        self._archive = WriteBehind(self._archive_batch, name="moderation-archive")

    def _k(self, name: str, broadcast_id: str | None = None) -> str:
        return f"{self.prefix}{name}:{{{broadcast_id}}}" if broadcast_id is not None else self.prefix + name

    async def open(self) -> None:
        await self._redis.ping()
        self._archive.start()

    async def close(self) -> None:
        await self._archive.close()
        if self._owns_redis:
            await self._redis.aclose()

    # --- settings -----------------------------------------------------------------
    async def get_settings(self, broadcast_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._k("settings", broadcast_id))
        return json.loads(raw) if raw else None

    async def put_settings(self, broadcast_id: str, settings: dict[str, Any]) -> None:
        await self._redis.set(self._k("settings", broadcast_id), json.dumps(settings))

    # --- bans (legacy: they live in the chat state now) ---------------------------------
    async def legacy_bans(self) -> list[BanRecord]:
        """The active bans a store from before kept (``bans:{b}`` hashes)."""
        now = time.time()
        out: list[BanRecord] = []
        for bid in sorted(_text(b) for b in await self._redis.smembers(self._k("ban-broadcasts"))):
            for doc in (await self._redis.hgetall(self._k("bans", bid))).values():
                try:
                    record = BanRecord.from_dict(json.loads(doc))
                except ValueError:
                    continue  # damaged: nothing to keep
                if record.active(now):
                    out.append(record)
        out.sort(key=lambda r: r.ts)
        return out

    async def drop_legacy_bans(self) -> None:
        index = self._k("ban-broadcasts")
        for bid in [_text(b) for b in await self._redis.smembers(index)]:
            await self._redis.delete(self._k("bans", bid))
            await self._redis.srem(index, bid)

    # --- viewer-token epochs --------------------------------------------------------------
    async def token_epoch(self, broadcast_id: str) -> int:
        raw = await self._redis.get(self._k("epoch", broadcast_id))
        return int(raw) if raw else 0

    async def raise_token_epoch(self, broadcast_id: str) -> int:
        return int(await self._redis.incr(self._k("epoch", broadcast_id)))

    # --- moderator grants ---------------------------------------------------------------
    async def add_grant(self, grant: ModeratorGrant, token_hash: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._k("grant:" + token_hash), json.dumps(grant.to_dict()))
            pipe.hset(self._k("grants", grant.broadcast_id), grant.id, token_hash)
            await pipe.execute()

    async def find_grant(self, token_hash: str) -> ModeratorGrant | None:
        raw = await self._redis.get(self._k("grant:" + token_hash))
        return ModeratorGrant(**json.loads(raw)) if raw else None

    async def list_grants(self, broadcast_id: str) -> list[ModeratorGrant]:
        hashes = await self._redis.hvals(self._k("grants", broadcast_id))
        grants = []
        for h in hashes:
            grant = await self.find_grant(_text(h))
            if grant is not None:
                grants.append(grant)
        return sorted(grants, key=lambda g: g.created_at)

    async def delete_grant(self, broadcast_id: str, grant_id: str) -> bool:
        token_hash = await self._redis.hget(self._k("grants", broadcast_id), grant_id)
        if token_hash is None:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._k("grant:" + _text(token_hash)))
            pipe.hdel(self._k("grants", broadcast_id), grant_id)
            await pipe.execute()
        return True

    # --- audit ------------------------------------------------------------------------
    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        bid = entry.broadcast_id
        new_id = int(await self._redis.incr(self._k("audit-seq", bid)))
        doc = {**entry.to_dict(), "id": new_id}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self._k("audit", bid), json.dumps(doc))
            pipe.ltrim(self._k("audit", bid), -MAX_AUDIT, -1)
            if entry.viewer_id and entry.text is not None:
                pipe.sadd(self._k("viewer-audit:" + entry.viewer_id), bid)
            await pipe.execute()
        return AuditEntry.from_dict(doc)

    async def list_audit(self, broadcast_id: str, after: int = 0, limit: int = 100) -> list[AuditEntry]:
        # ids grow with list position, so the entries after `after` are a suffix
        raw = await self._redis.lrange(self._k("audit", broadcast_id), -max(limit, 1), -1)
        cutoff = time.time() - self.retention
        out = []
        for item in raw:
            entry = AuditEntry.from_dict(json.loads(item))
            if entry.id > after:
                if entry.text is not None and entry.ts < cutoff:
                    entry = AuditEntry.from_dict({**entry.to_dict(), "text": None})  # retention
                out.append(entry)
        return out

    async def scrub_audit_text(self, viewer_id: str) -> int:
        key = self._k("viewer-audit:" + viewer_id)
        total = 0
        for bid in await self._redis.smembers(key):
            total += int(await self._scrub(keys=[self._k("audit", _text(bid))], args=[viewer_id]))
        await self._redis.delete(key)
        return total

    # --- comment archive -----------------------------------------------------------------
    async def archive_comment(self, comment: ArchivedComment) -> None:
        await self._archive.write(comment)

    async def queue_archive(self, comment: ArchivedComment) -> None:
        await self._archive.submit(comment)

    async def _archive_batch(self, batch: list[ArchivedComment]) -> None:
        by_viewer: dict[str, list[str]] = {}
        for comment in batch:
            by_viewer.setdefault(comment.viewer_id, []).append(json.dumps(comment.to_dict()))
        # One round trip for the whole batch.
        async with self._redis.pipeline(transaction=False) as pipe:
            for viewer_id, docs in by_viewer.items():
                key = self._k("archive:" + viewer_id)
                pipe.rpush(key, *docs)
                pipe.ltrim(key, -MAX_ARCHIVE, -1)
                pipe.expire(key, max(1, int(self.retention)))
            await pipe.execute()

    async def viewer_comments(self, viewer_id: str) -> list[ArchivedComment]:
        await self._archive.flush()
        cutoff = time.time() - self.retention
        raw = await self._redis.lrange(self._k("archive:" + viewer_id), 0, -1)
        comments = [ArchivedComment.from_dict(json.loads(item)) for item in raw]
        return [c for c in comments if c.ts >= cutoff]

    async def erase_viewer_comments(self, viewer_id: str) -> int:
        await self._archive.flush()
        key = self._k("archive:" + viewer_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.llen(key)
            pipe.delete(key)
            n, _ = await pipe.execute()
        return int(n)

    async def erase_broadcast_comments(self, broadcast_id: str) -> int:
        """Drop the broadcast's comments from every viewer's archive (its recording is deleted).  The
        archive is kept per viewer, so this scans the archive keys: an admin's rare, deliberate act."""
        await self._archive.flush()
        erased = 0
        async for key in self._redis.scan_iter(match=self._k("archive:*"), count=500):
            erased += int(await self._erase_broadcast(keys=[key], args=[broadcast_id]))
        return erased

    def shared_limits(self) -> RedisSharedLimits:
        return RedisSharedLimits(self._redis, self.prefix)


def _text(reply: bytes | str) -> str:
    """A Redis reply as text (the client does not decode responses; redis-py types say ``bytes | str``)."""
    return reply.decode() if isinstance(reply, bytes) else reply
