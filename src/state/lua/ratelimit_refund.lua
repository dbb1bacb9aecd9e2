-- Gives back what ratelimit_consume took (only used when tiers span several hash tags and a later
-- group denied the request). KEYS[i]: tier i. ARGV per tier: windowMs, limit, cost.
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: TIME before writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
for i = 1, #KEYS do
  local w = tonumber(ARGV[i * 3 - 2])
  local T = w / tonumber(ARGV[i * 3 - 1])
  local cost = tonumber(ARGV[i * 3])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if cost > 0 and tat > now then
    local nxt = tat - cost * T
    if nxt <= now then redis.call('DEL', KEYS[i])
    else redis.call('SET', KEYS[i], string.format('%.3f', nxt), 'PX', math.ceil(nxt - now) + 1000) end
  end
end
return 1
