-- Milliseconds each key still cools down (0 when it does not). KEYS: cooling keys (one hash tag).
local out = {}
for i = 1, #KEYS do
  local left = redis.call('PTTL', KEYS[i])
  out[i] = left > 0 and left or 0
end
return out
