"""The Lua script that leases requests and tokens of a provider's fleet-wide limits, atomically.

Redis runs it whole, with its own clock (``TIME``), so every process counts in one time.
"""

LEASE_SCRIPT = """
-- Lease requests and tokens of one provider's fleet-wide per-minute limits, atomically.
-- KEYS: requests window (hash slot -> amount), tokens window, live processes (zset).
-- ARGV: slot_ms, span (slots a grant counts for), member, live_ms, rpm, tpm (0: none),
--       want requests, want tokens, min tokens, backfill requests, backfill tokens,
--       then (slot, requests, tokens) triples to stop counting (negative: count more).
-- Returns {requests granted, tokens granted, slot, live processes, ms until worth asking again}.
pcall(redis.replicate_commands)
local slot_ms, span = tonumber(ARGV[1]), tonumber(ARGV[2])
local member, live_ms = ARGV[3], tonumber(ARGV[4])
local rpm, tpm = tonumber(ARGV[5]), tonumber(ARGV[6])
local want_r, want_t, min_t = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local now = math.floor(now_ms / slot_ms)
local oldest = now - span + 1

local function add(key, slot, amount)
  if amount ~= 0 and slot >= oldest then
    if redis.call('HINCRBY', key, slot, amount) <= 0 then redis.call('HDEL', key, slot) end
  end
end

local function held(key)
  local all = redis.call('HGETALL', key)
  local total, first = 0, nil
  for i = 1, #all, 2 do
    local slot = tonumber(all[i])
    if slot < oldest then
      redis.call('HDEL', key, all[i])
    else
      total = total + tonumber(all[i + 1])
      if first == nil or slot < first then first = slot end
    end
  end
  return total, first
end

for i = 12, #ARGV, 3 do
  local slot = tonumber(ARGV[i])
  if rpm > 0 then add(KEYS[1], slot, -tonumber(ARGV[i + 1])) end
  if tpm > 0 then add(KEYS[2], slot, -tonumber(ARGV[i + 2])) end
end
if rpm > 0 then add(KEYS[1], now, tonumber(ARGV[10])) end
if tpm > 0 then add(KEYS[2], now, tonumber(ARGV[11])) end

local free_r, free_t, first_r, first_t = want_r, want_t, nil, nil
if rpm > 0 then
  local total
  total, first_r = held(KEYS[1])
  free_r = math.min(want_r, rpm - total)
end
if tpm > 0 then
  local total
  total, first_t = held(KEYS[2])
  free_t = math.min(want_t, tpm - total)
end

local grant_r, grant_t, retry_ms = 0, 0, 0
if free_r >= 1 and free_t >= min_t then
  grant_r, grant_t = free_r, math.max(0, free_t)
  if rpm > 0 then add(KEYS[1], now, grant_r) end
  if tpm > 0 then add(KEYS[2], now, grant_t) end
else
  local first = first_r
  if free_r >= 1 then first = first_t end
  if first ~= nil then retry_ms = (first + span) * slot_ms - now_ms end
  retry_ms = math.max(retry_ms, slot_ms)
end
for i = 1, 2 do redis.call('PEXPIRE', KEYS[i], (span + 2) * slot_ms) end

redis.call('ZADD', KEYS[3], now_ms, member)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms - live_ms)
redis.call('PEXPIRE', KEYS[3], live_ms * 2)
return {grant_r, grant_t, now, redis.call('ZCARD', KEYS[3]), retry_ms}
"""

BUDGET_SCRIPT = """
-- Lease dollars of one budget account's fleet-wide limit, atomically.
-- KEYS: the account (hash: spent, and l:<process> = what each process holds leased),
--       live processes (zset: process -> last ask, ms).
-- ARGV: limit, report (leased spend to count), give back (lease to stop counting), want,
--       min, restored (the spend when the account is new), ttl_ms (0: none), backfill
--       (spend made without a lease, while Redis was away), member, live_ms.
-- A process not seen for live_ms (it died) has its leases dropped: they count no more.
-- Returns {granted, spent, leased, live processes} (numbers as strings: Lua would cut them).
pcall(redis.replicate_commands)
local key, live = KEYS[1], KEYS[2]
local limit, report, back = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local want, min = tonumber(ARGV[4]), tonumber(ARGV[5])
local member, live_ms = ARGV[9], tonumber(ARGV[10])
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', live, now_ms, member)
redis.call('ZREMRANGEBYSCORE', live, '-inf', now_ms - live_ms)
redis.call('PEXPIRE', live, live_ms * 2)
redis.call('HSETNX', key, 'spent', ARGV[6])
local spent = tonumber(redis.call('HINCRBYFLOAT', key, 'spent', report + tonumber(ARGV[8])))
local mine = 'l:' .. member
local own = tonumber(redis.call('HINCRBYFLOAT', key, mine, -(report + back)))
if own < 0 then own = 0 end
local leased = 0
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  local field = all[i]
  if string.sub(field, 1, 2) == 'l:' and field ~= mine then
    if redis.call('ZSCORE', live, string.sub(field, 3)) then
      leased = leased + tonumber(all[i + 1])
    else
      redis.call('HDEL', key, field)
    end
  end
end
local grant = math.min(want, limit - spent - leased - own)
if grant < min or grant <= 0 then grant = 0 end
own = own + grant
redis.call('HSET', key, mine, tostring(own))
local ttl = tonumber(ARGV[7])
if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
return {tostring(grant), tostring(spent), tostring(leased + own), redis.call('ZCARD', live)}
"""
