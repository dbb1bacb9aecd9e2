-- Charges an amount to token tiers after the response, unconditionally (a debt is waited out).
-- KEYS[i]: tier i. ARGV[1]: amount; then per tier: windowMs, limit.
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: TIME before writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local amount = tonumber(ARGV[1])
for i = 1, #KEYS do
  local w = tonumber(ARGV[i * 2])
  local T = w / tonumber(ARGV[i * 2 + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local nxt = (tat > now and tat or now) + amount * T
  redis.call('SET', KEYS[i], string.format('%.3f', nxt), 'PX', math.ceil(nxt - now) + 1000)
end
return 1
