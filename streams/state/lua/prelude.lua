-- Shared by the state scripts (pasted in at load time: Redis scripts cannot import).
local function s(n) return string.format('%d', n) end
-- 1 if a member last seen at `last` (or never) is not yet counted from `from` on.
local function newly(last, from) if (not last) or tonumber(last) < from then return 1 end return 0 end
-- The 24 hour buckets of a 24-hour amount window ending in `hour`.
local function hour_buckets(hour)
  local hours = {}
  for i = 0, 23 do hours[i + 1] = s(hour - i) end
  return hours
end
local function hour_sum(key, hours)
  local total = 0
  for _, v in ipairs(redis.call('HMGET', key, unpack(hours))) do
    if v then total = total + tonumber(v) end
  end
  return total
end
