-- Replaces reservations by actual use and records the request's usage.
-- KEYS[1]: the subject's base key. ARGV[1]: number of quotas q; then per quota: kind, period id, delta, expireAtMs;
-- then route, retention (s), and type/value pairs for the usage record of today (UTC, Redis time).
local q = tonumber(ARGV[1])
for i = 0, q - 1 do
  local delta = tonumber(ARGV[2 + i * 4 + 2])
  if delta ~= 0 then
    local key = KEYS[1] .. ':' .. ARGV[2 + i * 4] .. ':' .. ARGV[2 + i * 4 + 1]
    local v = redis.call('INCRBY', key, delta)
    if v < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
    if redis.call('PTTL', key) < 0 then redis.call('PEXPIREAT', key, ARGV[2 + i * 4 + 3]) end
  end
end
local at = 2 + q * 4
if #ARGV >= at + 1 then
  local route = ARGV[at]
  local hkey = KEYS[1] .. ':u:' .. day_of(now_ms())
  for j = at + 2, #ARGV, 2 do
    redis.call('HINCRBY', hkey, route .. '\t' .. ARGV[j], ARGV[j + 1])
  end
  redis.call('EXPIRE', hkey, ARGV[at + 1])
end
return 1
