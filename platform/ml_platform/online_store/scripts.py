"""The online store's two Lua scripts: Redis runs each atomically, so a write or a read is one round trip.

WRITE, for a batch of rows: KEYS are the rows' hash keys; ARGV holds three per row: its event
time (microseconds), the absolute expiry in milliseconds ('' for none), and its field/value pairs as
one JSON array of strings (decoded by Redis's bundled cjson: three arguments a row instead of two a
field, which the client packs three times faster). Redis's `TIME` is read once: the batch's created stamp. A row whose event time is
older than the stored `_ts` is left alone (nil back); an equal or newer one replaces the whole hash
(DEL, then HSET of `_ts`, `_created` and its fields, so a feature that became null does not keep
its old value) and gets its expiry (PEXPIREAT; an expiry already past deletes the key at once,
which is what a row already stale deserves). Returns, per row, the created stamp or nil.

READ, for groups of keys of one view each: ARGV[1] is the lookup time in microseconds ('' for
Redis's own `TIME`), then per group: its number of keys, its TTL in microseconds ('' for none), its
number of features and their names. A hash answers when `at - ttl <= _ts <= at`; anything else (no
hash, a stale one, one from after `at`) comes back false. Returns, as one JSON text (Redis's
bundled cjson), the lookup time used, then per group the HMGET of each key's `_ts` and features
(false for no answer, or for a field the hash lacks). One string instead of a nested reply: the
client's pure-Python RESP parser took most of a 100-entity lookup's time parsing a reply of ~1 300
items, json.loads parses the text in C.

Timestamps are integer microseconds since the epoch: about 1.8e15 today, well inside the 2^53 up to
which Lua's doubles hold integers exactly. A stamp is built as text (seconds .. 6-digit micros):
Lua's `tostring` of a large number would round it.
"""

from __future__ import annotations

WRITE = """
local t = redis.call('TIME')
local created = t[1] .. string.format('%06d', tonumber(t[2]))
local out = {}
for k = 1, #KEYS do
  local i = 3 * k - 2
  local ts, expire_at = ARGV[i], ARGV[i + 1]
  local stored = redis.call('HGET', KEYS[k], '_ts')
  if stored and tonumber(stored) > tonumber(ts) then
    out[k] = false
  else
    redis.call('DEL', KEYS[k])
    redis.call('HSET', KEYS[k], '_ts', ts, '_created', created, unpack(cjson.decode(ARGV[i + 2])))
    if expire_at ~= '' then
      redis.call('PEXPIREAT', KEYS[k], expire_at)
    end
    out[k] = created
  end
end
return out
"""

READ = """
local at = ARGV[1]
if at == '' then
  local t = redis.call('TIME')
  at = t[1] .. string.format('%06d', tonumber(t[2]))
end
local now = tonumber(at)
local out = {at}
local i, k = 2, 1
while i <= #ARGV do
  local n_keys, ttl, n_features = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
  local fields = {'_ts'}
  for f = 1, n_features do
    fields[f + 1] = ARGV[i + 2 + f]
  end
  i = i + 3 + n_features
  local oldest = nil
  if ttl ~= '' then
    oldest = now - tonumber(ttl)
  end
  local rows = {}
  for r = 1, n_keys do
    local values = redis.call('HMGET', KEYS[k], unpack(fields))
    local ts = values[1] and tonumber(values[1])
    if ts and ts <= now and (oldest == nil or ts >= oldest) then
      rows[r] = values
    else
      rows[r] = false
    end
    k = k + 1
  end
  out[#out + 1] = rows
end
return cjson.encode(out)
"""
