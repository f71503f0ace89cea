-- Apply one transfer to its payee's keys (one hash slot) and return the payee facts.
-- KEYS: in, out_amount, payers, meta, facts-of-this-transfer, payers_last, in_amount
-- ARGV: tid, ts, payer, amount
-- Returns "comma-separated PayeeFacts"; a redelivery returns the stored facts unchanged.
-- Window facts are counts and hour-bucket sums; housekeeping runs once per event hour.
local stored = redis.call('GET', KEYS[5])
if stored then return stored end

local RETENTION, CAP, STATE_TTL, DEDUPE_TTL = __RETENTION__, __CAP__, __STATE_TTL__, __DEDUPE_TTL__
local W1H, W24H = __W1H__, __W24H__
local function s(n) return string.format('%d', n) end
local tid, sts, payer, amount = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ts = tonumber(sts)
local hour = math.floor(ts / 3600000)
local t1h, t24h = s(ts - W1H), s(ts - W24H)
-- The 24 hour buckets of the 24-hour amount windows, named once for both sums.
local hours = {}
for i = 0, 23 do hours[i + 1] = s(hour - i) end

local function hour_sum(key)
  local total = 0
  for _, v in ipairs(redis.call('HMGET', key, unpack(hours))) do
    if v then total = total + tonumber(v) end
  end
  return total
end

local meta = redis.call('HMGET', KEYS[4], 'fs', 'oa', 'by', 'ib', 'tq')
local fs = tonumber(meta[1])
if (not fs) or fs > ts then fs = ts; redis.call('HSET', KEYS[4], 'fs', sts) end
local old = redis.call('ZSCORE', KEYS[3], payer)
if (not old) or tonumber(old) > ts then
  redis.call('ZADD', KEYS[3], sts, payer)
  if not old then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(CAP + 1)) end
end
if redis.call('ZADD', KEYS[1], sts, tid .. '|' .. payer .. '|' .. amount) == 1 then
  redis.call('HINCRBY', KEYS[7], hours[1], amount)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(CAP + 1))
end
if redis.call('ZADD', KEYS[6], 'GT', sts, payer) == 1 then
  redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -(CAP + 1))
end
if hour > (tonumber(meta[5]) or -1) then
  local oldest = '(' .. s(ts - RETENTION)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', oldest)
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', oldest)
  if redis.call('HLEN', KEYS[7]) > 30 then
    for _, field in ipairs(redis.call('HKEYS', KEYS[7])) do
      if tonumber(field) < hour - 26 then redis.call('HDEL', KEYS[7], field) end
    end
  end
  redis.call('HSET', KEYS[4], 'tq', hours[1])
  for _, i in ipairs({1, 3, 4, 6, 7}) do redis.call('EXPIRE', KEYS[i], STATE_TTL) end
end

local facts = table.concat({
  redis.call('ZCOUNT', KEYS[1], t1h, sts), redis.call('ZCOUNT', KEYS[1], t24h, sts),
  redis.call('ZCOUNT', KEYS[6], t1h, '+inf'), redis.call('ZCOUNT', KEYS[6], t24h, '+inf'),
  redis.call('ZCOUNT', KEYS[3], t24h, sts),
  s(hour_sum(KEYS[7])), s(hour_sum(KEYS[2])), s(fs),
  meta[2] or '-1', meta[3] or '-1', meta[4] or '-1',
}, ',')
redis.call('SET', KEYS[5], facts, 'EX', DEDUPE_TTL)
return facts
