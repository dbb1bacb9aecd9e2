-- Shared prelude (prepended to the quota scripts): Redis TIME as the clock, UTC calendar periods.
-- Civil-date arithmetic after H. Hinnant's days_from_civil / civil_from_days (Lua has no os.date here).
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: TIME before writes
local function floor(x) return math.floor(x) end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
end

local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- id ("d20261125" / "m202611") and end (epoch ms) of the period containing now
local function period_of(period, ms)
  local days = floor(ms / 86400000)
  local y, m, d = civil_from_days(days)
  if period == 'day' then
    return string.format('d%04d%02d%02d', y, m, d), (days + 1) * 86400000
  end
  local ny, nm = y, m + 1
  if nm > 12 then ny = y + 1; nm = 1 end
  return string.format('m%04d%02d', y, m), days_from_civil(ny, nm, 1) * 86400000
end

local function day_of(ms)
  local y, m, d = civil_from_days(floor(ms / 86400000))
  return string.format('%04d-%02d-%02d', y, m, d)
end
