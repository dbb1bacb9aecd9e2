-- Takes a concurrency lease when fewer than `limit` unexpired leases are held (Redis TIME is the clock).
-- KEYS[1]: the lease set (a sorted set: member = lease id, score = expiry in ms). ARGV: limit, id, ttlMs.
-- Returns {1, held} when taken, {0, held} when refused. Expired leases (a gateway that died) are dropped first.
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: TIME before writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) and not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return {0, held} end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
-- every lease expires within ttl of its last renewal, so the set never outlives its newest lease by more
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, redis.call('ZCARD', KEYS[1])}
