-- Extends live leases of one lease set by ttlMs from now; an expired (or released) lease is not revived.
-- KEYS[1]: the lease set. ARGV: ttlMs, id1, id2, ...
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local alive = 0
for i = 2, #ARGV do
  local exp = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if exp and tonumber(exp) > now then
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
    alive = alive + 1
  end
end
if alive > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return alive
