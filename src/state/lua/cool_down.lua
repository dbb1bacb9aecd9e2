-- A candidate cools down for ARGV[1] ms from now; a longer cooldown already running is kept.
-- KEYS[1]: the cooling key (its TTL is the time left, so replicas need no common clock).
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
