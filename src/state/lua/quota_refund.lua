-- Gives reservations back (5xx, connection failure, client gone before any response).
-- KEYS[1]: the subject's base key. ARGV per quota: kind, period id, amount.
for i = 1, #ARGV / 3 do
  local key = KEYS[1] .. ':' .. ARGV[i * 3 - 2] .. ':' .. ARGV[i * 3 - 1]
  if redis.call('EXISTS', key) == 1 then
    local v = redis.call('DECRBY', key, ARGV[i * 3])
    if v < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
  end
end
return 1
