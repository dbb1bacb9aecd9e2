-- Reserves amounts of several quotas of one subject in the current UTC period, all or nothing.
-- KEYS[1]: the subject's hash-tagged base key; counters are KEYS[1]..':'..kind..':'..period (same slot).
-- ARGV per quota: kind, period (day|month), limit, amount.
-- Returns {1, period1, period2, ...} or {0, index, used, resetAtMs, period1, ...}.
local now = now_ms()
local n = #ARGV / 4
local ids, ends, keys = {}, {}, {}
for i = 1, n do
  local id, e = period_of(ARGV[i * 4 - 2], now)
  ids[i] = id
  ends[i] = e
  keys[i] = KEYS[1] .. ':' .. ARGV[i * 4 - 3] .. ':' .. id
  local used = tonumber(redis.call('GET', keys[i]) or '0')
  if used + tonumber(ARGV[i * 4]) > tonumber(ARGV[i * 4 - 1]) then
    local out = {0, i - 1, used, e}
    for j = 1, i do out[4 + j] = ids[j] end
    return out
  end
end
local out = {1}
for i = 1, n do
  redis.call('INCRBY', keys[i], ARGV[i * 4])
  -- kept one day past the period so the admin API can still show it
  redis.call('PEXPIREAT', keys[i], ends[i] + 86400000)
  out[i + 1] = ids[i]
end
return out
