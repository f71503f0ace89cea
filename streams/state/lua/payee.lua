-- Apply one transfer to its payee's keys (one hash slot) and return the payee facts.
-- KEYS: in, out_amount, payers, meta, facts-of-this-transfer, payers_last, in_amount
-- ARGV: tid, ts, payer, amount, retention_ms, cap, state_ttl_s, dedupe_ttl_s, w1h, w24h
-- Returns "comma-separated PayeeFacts"; a redelivery returns the stored facts unchanged.
-- Window facts are counts and hour-bucket sums, O(log n) however busy the payee is.
local stored = redis.call('GET', KEYS[5])
if stored then return stored end

local function s(n) return string.format('%d', n) end
local tid, ts, payer, amount = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local retention, cap, state_ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local w1h, w24h = tonumber(ARGV[9]), tonumber(ARGV[10])
local hour = math.floor(ts / 3600000)

local function hour_sum(key)
  local fields = {}
  for i = 0, 23 do fields[i + 1] = s(hour - i) end
  local total = 0
  for _, v in ipairs(redis.call('HMGET', key, unpack(fields))) do
    if v then total = total + tonumber(v) end
  end
  return total
end
local function trim(key, by_time)
  if by_time then redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. s(ts - retention)) end
  redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
end

local meta = redis.call('HMGET', KEYS[4], 'fs', 'oa', 'by', 'ib')
local fs = tonumber(meta[1])
if (not fs) or fs > ts then fs = ts; redis.call('HSET', KEYS[4], 'fs', s(ts)) end
local old = redis.call('ZSCORE', KEYS[3], payer)
if (not old) or tonumber(old) > ts then
  redis.call('ZADD', KEYS[3], s(ts), payer)
  trim(KEYS[3], false)
end
if redis.call('ZADD', KEYS[1], s(ts), tid .. '|' .. payer .. '|' .. amount) == 1 then
  redis.call('HINCRBY', KEYS[7], s(hour), amount)
  if redis.call('HLEN', KEYS[7]) > 30 then
    for _, field in ipairs(redis.call('HKEYS', KEYS[7])) do
      if tonumber(field) < hour - 26 then redis.call('HDEL', KEYS[7], field) end
    end
  end
end
trim(KEYS[1], true)
redis.call('ZADD', KEYS[6], 'GT', s(ts), payer)
trim(KEYS[6], true)

local facts = table.concat({
  s(redis.call('ZCOUNT', KEYS[1], s(ts - w1h), s(ts))),
  s(redis.call('ZCOUNT', KEYS[1], s(ts - w24h), s(ts))),
  s(redis.call('ZCOUNT', KEYS[6], s(ts - w1h), '+inf')),
  s(redis.call('ZCOUNT', KEYS[6], s(ts - w24h), '+inf')),
  s(redis.call('ZCOUNT', KEYS[3], s(ts - w24h), s(ts))),
  s(hour_sum(KEYS[7])), s(hour_sum(KEYS[2])), s(fs),
  meta[2] or '-1', meta[3] or '-1', meta[4] or '-1',
}, ',')
redis.call('SET', KEYS[5], facts, 'EX', ARGV[8])
for _, i in ipairs({1, 3, 4, 6, 7}) do redis.call('EXPIRE', KEYS[i], state_ttl) end
return facts
