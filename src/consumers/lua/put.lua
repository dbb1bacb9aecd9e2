-- Compare-and-set of one runtime consumer, the version bump and the change notice, as one step.
-- KEYS[1]: the records hash (id -> "<version>|<json>"), KEYS[2]: the version counter.
-- ARGV: id, expected version (0: no record), record JSON ('' deletes), channel.
-- Returns {1, version} when written, {0, the stored version} when the record changed in between.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local have = 0
if cur then have = tonumber(string.match(cur, '^(%d+)|')) end
if have ~= tonumber(ARGV[2]) then return {0, have} end
local v = redis.call('INCR', KEYS[2])
local op = 'put'
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  op = 'delete'
else
  redis.call('HSET', KEYS[1], ARGV[1], v .. '|' .. ARGV[3])
end
redis.call('PUBLISH', ARGV[4], cjson.encode({ op = op, id = ARGV[1], version = v }))
return {1, v}
