"""Lua scripts of the Redis quota backend (run with EVALSHA through ``register_script``).

Every key a script touches arrives in KEYS, built in Python by ``tenant_key``; all keys of one
call belong to one tenant and share its ``{tenant}`` hash tag, so each call is valid on a Redis
Cluster (one slot). Amounts, limits and counters are integers (see ``units``); numbers go back
to Python as strings (``%.0f``), because Redis truncates Lua numbers in replies.

Keys of one dimension x window (``dp:{t}:quota:<dimension>:<window start>:<suffix>``):

* ``used``: mirror of the durable counter (quota_counters), or the request/run count;
* ``holds``: sorted set of reservation ids scored by lease expiry (ms since the epoch);
* ``amounts``: hash reservation id -> held units;
* ``held``: sum of ``amounts`` (so a check never walks every open hold).

RESERVE contract
  KEYS: 4 per asked dimension, in the plan's order: used, holds, amounts, held.
  ARGV: now_ms, reservation_id, expires_ms, hold_ttl_ms, apply ("1" reserve, "0" peek), then 4
        per dimension: mode, limit, amount, count_ttl_ms. Modes:
        H = mirrored durable usage + holds; h = holds only (concurrency);
        C = counted, mirrored from PostgreSQL (agent runs per day);
        c = counted, Redis only (requests per minute; a missing key counts 0).
  Returns one of
        {"load", i...}         the mirrors (H, C) of dimensions i (1-based) are missing: load
                               them from PostgreSQL (SET NX + expiry) and call again; nothing
                               was changed;
        {"refused", i, used}   dimension i does not fit (the first in plan order); nothing held;
        {"ok", used_1, held_1, ...}  everything held/counted; per dimension, the amount used
                               (durable or counted, plus held) and the part held, both
                               before this grant.
  With apply = "0" nothing is refused or held: it returns usage ({"ok", ...}) or "load".
  Each dimension's expired holds are dropped before it is checked (so a dead process's holds
  vanish at the end of their lease), even when the call then refuses or only peeks.
"""

from __future__ import annotations

_HELPERS = """
local function fmt(x) return string.format('%.0f', x) end

local function decr(key, amount)
  if amount ~= 0 and redis.call('DECRBY', key, fmt(amount)) <= 0 then
    redis.call('DEL', key)
  end
end
"""

_DROP_EXPIRED = """
local function drop_expired(holds, amounts, held, now)
  while true do
    local gone = redis.call('ZRANGEBYSCORE', holds, '-inf', now, 'LIMIT', 0, 500)
    if #gone == 0 then return end
    local total = 0
    for _, v in ipairs(redis.call('HMGET', amounts, unpack(gone))) do
      total = total + (tonumber(v) or 0)
    end
    redis.call('HDEL', amounts, unpack(gone))
    redis.call('ZREM', holds, unpack(gone))
    decr(held, total)
  end
end
"""

RESERVE = (
    _HELPERS
    + _DROP_EXPIRED
    + """
local now, rid, expires = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local hold_ttl, apply = tonumber(ARGV[4]), ARGV[5] == '1'
local n = #KEYS / 4

local missing = {'load'}
for i = 1, n do
  local mode = ARGV[5 + 4 * (i - 1) + 1]
  if (mode == 'H' or mode == 'C') and redis.call('EXISTS', KEYS[4 * (i - 1) + 1]) == 0 then
    missing[#missing + 1] = tostring(i)
  end
end
if #missing > 1 then return missing end

local out = {'ok'}
for i = 1, n do
  local k, a = 4 * (i - 1), 5 + 4 * (i - 1)
  local mode, limit, amount = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local total, held = 0, 0
  if mode ~= 'h' then total = tonumber(redis.call('GET', KEYS[k + 1]) or '0') end
  if mode == 'H' or mode == 'h' then
    drop_expired(KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], now)
    held = tonumber(redis.call('GET', KEYS[k + 4]) or '0')
    total = total + held
  end
  if apply and total + amount > limit then
    return {'refused', tostring(i), fmt(total)}
  end
  out[#out + 1] = fmt(total)
  out[#out + 1] = fmt(held)
end

if apply then
  for i = 1, n do
    local k, a = 4 * (i - 1), 5 + 4 * (i - 1)
    local mode, amount = ARGV[a + 1], ARGV[a + 3]
    if tonumber(amount) > 0 then
      if mode == 'H' or mode == 'h' then
        redis.call('ZADD', KEYS[k + 2], expires, rid)
        redis.call('HSET', KEYS[k + 3], rid, amount)
        redis.call('INCRBY', KEYS[k + 4], amount)
        for j = 2, 4 do
          if redis.call('PTTL', KEYS[k + j]) < hold_ttl then
            redis.call('PEXPIRE', KEYS[k + j], hold_ttl)
          end
        end
      else
        redis.call('INCRBY', KEYS[k + 1], amount)
        if redis.call('PTTL', KEYS[k + 1]) < 0 then
          redis.call('PEXPIRE', KEYS[k + 1], ARGV[a + 4])
        end
      end
    end
  end
end

return out
"""
)

_REMOVE_HOLD = """
local function remove_hold(holds, amounts, held, rid)
  if redis.call('ZREM', holds, rid) == 0 then return 0 end
  local amount = tonumber(redis.call('HGET', amounts, rid) or '0')
  redis.call('HDEL', amounts, rid)
  decr(held, amount)
  return 1
end
"""

# KEYS: 3 per hold (holds, amounts, held); ARGV: reservation id. Returns holds removed (0 when
# already settled, released or dropped after expiry: idempotent).
REMOVE = (
    _HELPERS
    + _REMOVE_HOLD
    + """
local removed = 0
for i = 1, #KEYS, 3 do
  removed = removed + remove_hold(KEYS[i], KEYS[i + 1], KEYS[i + 2], ARGV[1])
end
return removed
"""
)

# KEYS: 3 per hold (holds, amounts, held); ARGV: now_ms, reservation id, expires_ms, ttl_ms.
# Returns 1 when every hold was live and now expires at expires_ms, else 0 (nothing changed).
RENEW = """
local now, rid, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[4])
for i = 1, #KEYS, 3 do
  local score = redis.call('ZSCORE', KEYS[i], rid)
  if not score or tonumber(score) <= now then return 0 end
end
for i = 1, #KEYS, 3 do
  redis.call('ZADD', KEYS[i], 'XX', ARGV[3], rid)
  for j = 0, 2 do
    if redis.call('PTTL', KEYS[i + j]) < ttl then redis.call('PEXPIRE', KEYS[i + j], ttl) end
  end
end
return 1
"""

# After a ledger commit, in one step: what it added to the durable counters goes into their
# mirrors, and the holds of the reservations it settled go away (so no check in between sees
# the usage twice, as held and as used).
# KEYS: m mirrors, then 3 per settled hold (holds, amounts, held). ARGV: m, the m integer
# deltas, then one reservation id per settled hold. Adds only to mirrors that exist (a missing
# mirror is loaded from PostgreSQL, which already holds the increment); never below zero.
# Returns the holds removed.
DURABLE = (
    _HELPERS
    + _REMOVE_HOLD
    + """
local m = tonumber(ARGV[1])
for i = 1, m do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('INCRBY', KEYS[i], ARGV[1 + i]) < 0 then
      redis.call('SET', KEYS[i], '0', 'KEEPTTL')
    end
  end
end
local removed = 0
for j = 0, (#KEYS - m) / 3 - 1 do
  local k = m + 3 * j
  removed = removed + remove_hold(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[2 + m + j])
end
return removed
"""
)
