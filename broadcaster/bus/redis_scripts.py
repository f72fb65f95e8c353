"""The Lua scripts of the Redis chat bus (:mod:`broadcaster.bus.redis`): each is one atomic step on one
broadcast's keys (one cluster slot).  Posting a comment is INCR (seeded from the clock when the key
is missing) + RPUSH/LTRIM + (S)PUBLISH, so the publish order *is* the seq order on every node."""

# KEYS: seq, hist, ban:<author> (optional), banaddr:<address> (optional);
# ARGV: comment JSON without seq, channel, history size, retention, seq seed, PUBLISH or SPUBLISH.
# 0 when the author (or their address) is banned, else the comment's seq.
POST_COMMENT = """
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[5], 'NX')
local seq = string.format('%d', redis.call('INCR', KEYS[1]))
local data = '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('RPUSH', KEYS[2], data)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call(ARGV[6], ARGV[2], data)
return seq
"""

# KEYS: reactions; ARGV: channel, PUBLISH or SPUBLISH, node id, then kind, count pairs.
ADD_REACTIONS = """
for i = 4, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
local flat = redis.call('HGETALL', KEYS[1])
local totals, counts = {}, {}
for i = 1, #flat, 2 do totals[flat[i]] = tonumber(flat[i + 1]) end
for i = 4, #ARGV, 2 do counts[ARGV[i]] = tonumber(ARGV[i + 1]) end
local msg = cjson.encode({type = 'reactions', node = ARGV[3], counts = counts, totals = totals})
redis.call(ARGV[2], ARGV[1], msg)
return msg
"""

# Right of erasure: drop the history entries whose id is listed, in one atomic step.
FORGET = """
local wanted = {}
for i = 1, #ARGV do wanted[ARGV[i]] = true end
local n = 0
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local ok, doc = pcall(cjson.decode, raw)
  if ok and type(doc) == 'table' and wanted[doc['id']] then
    n = n + redis.call('LREM', KEYS[1], 0, raw)
  end
end
return n
"""
