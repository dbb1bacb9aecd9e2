-- Atomic multi-tier GCRA: every tier admits the request and each is consumed, or nothing is.
-- KEYS[i]: tier i (one hash tag for all). ARGV per tier: windowMs, limit, cost (0 = admit while not exhausted).
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: TIME before writes
-- Returns {allowed, remaining1, resetMs1, retryMs1, remaining2, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local eps = 0.000001
local n = #KEYS
local allowed = 1
local bases, nexts, out = {}, {}, {0}
for i = 1, n do
  local w = tonumber(ARGV[i * 3 - 2])
  local limit = tonumber(ARGV[i * 3 - 1])
  local cost = tonumber(ARGV[i * 3])
  local T = w / limit
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local base = tat > now and tat or now
  bases[i] = base
  local rem, reset, retry
  local nxt = base + (cost == 0 and T or cost * T)
  if nxt - now > w + eps then
    allowed = 0
    nexts[i] = -1
    rem = math.max(0, math.floor((w - (base - now)) / T + 1e-9))
    if cost == 0 then rem = 0 end
    reset = base - now
    retry = nxt - w - now
  elseif cost == 0 then
    nexts[i] = 0
    rem = math.floor((w - (base - now)) / T + 1e-9)
    reset = base - now
    retry = 0
  else
    nexts[i] = nxt
    rem = math.floor((w - (nxt - now)) / T + 1e-9)
    reset = nxt - now
    retry = 0
  end
  out[i * 3 - 1] = rem
  out[i * 3] = math.ceil(reset)
  out[i * 3 + 1] = math.ceil(retry)
end
out[1] = allowed
if allowed == 1 then
  for i = 1, n do
    if nexts[i] > 0 then
      redis.call('SET', KEYS[i], string.format('%.3f', nexts[i]), 'PX', math.ceil(nexts[i] - now) + 1000)
    end
  end
else
  -- not consumed: tiers that would have admitted report their current state
  for i = 1, n do
    if nexts[i] >= 0 then
      local w = tonumber(ARGV[i * 3 - 2])
      local T = w / tonumber(ARGV[i * 3 - 1])
      out[i * 3 - 1] = math.max(0, math.floor((w - (bases[i] - now)) / T + 1e-9))
      out[i * 3] = math.ceil(bases[i] - now)
    end
  end
end
return out
