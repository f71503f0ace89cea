-- Shared by the state scripts (pasted in at load time: Redis scripts cannot import).
local function s(n) return string.format('%d', n) end
-- 1 if a member last seen at `last` (or never) is not yet counted from `from` on.
local function newly(last, from) if (not last) or tonumber(last) < from then return 1 end return 0 end
-- Sum of the hour buckets (field = hour number) of a 24-hour amount window ending in `hour`.
-- HGETALL, not HMGET of 24 named hours: an account has a few buckets (at most ~30 after
-- trimming), and asking for 24 mostly absent fields cost several times more in Lua.
local function hour_sum(key, hour)
  local total, from = 0, hour - 23
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    local h = tonumber(flat[i])
    if h >= from and h <= hour then total = total + tonumber(flat[i + 1]) end
  end
  return total
end
-- A stored profile field as an integer fact, or -1 (unknown) when it is missing or not an
-- integer (written by hand or by another version): a bad value must not stop scoring.
local function known_int(v)
  local n = tonumber(v)
  if n and n == math.floor(n) and n > -1e15 and n < 1e15 then return s(n) end
  return '-1'
end
