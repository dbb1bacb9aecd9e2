-- Every runtime consumer and the version counter, read as one picture (a resync).
-- KEYS[1]: the records hash, KEYS[2]: the version counter. Returns {version, id, value, id, value, ...}.
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, tonumber(redis.call('GET', KEYS[2]) or '0'))
return out
