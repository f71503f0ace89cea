-- One transfer on its payee's keys (one hash slot): compute the payee facts, then apply it.
-- KEYS: in, out_amount, payers, meta, facts-of-this-transfer, payers_last, in_amount
-- ARGV: tid, ts, payer, amount, dry ('1' = screening: compute only, write nothing)
-- Returns "comma-separated PayeeFacts": the current state plus this transfer, computed before
-- any write. A redelivery returns the stored facts unchanged.
local stored = redis.call('GET', KEYS[5])
if stored then return stored end

__PRELUDE__
local RETENTION = __RETENTION__
-- Arguments to redis.call are passed as strings: a Lua number costs a printf in each call.
local STATE_TTL, DEDUPE_TTL, KEEP_NEWEST = '__STATE_TTL__', '__DEDUPE_TTL__', '__KEEP_NEWEST__'
local W1H, W24H = __W1H__, __W24H__
local tid, sts, payer, amount = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ts = tonumber(sts)
local hour = math.floor(ts / 3600000)
local t1h, t24h = s(ts - W1H), s(ts - W24H)
local member = tid .. '|' .. payer .. '|' .. amount
local shour = s(hour)

local meta = redis.call('HMGET', KEYS[4], 'fs', 'oa', 'by', 'ib', 'tq')
local fs = tonumber(meta[1])
local earlier_seen = fs and fs <= ts
if not earlier_seen then fs = ts end
local first_paid = redis.call('ZSCORE', KEYS[3], payer)
local first_time = 0
if (not first_paid) or tonumber(first_paid) > ts then first_time = 1 end
local added, added_amount = 1, tonumber(amount)
if redis.call('ZSCORE', KEYS[1], member) then added, added_amount = 0, 0 end
local last_paid = redis.call('ZSCORE', KEYS[6], payer)

local facts = table.concat({
  redis.call('ZCOUNT', KEYS[1], t1h, sts) + added,
  redis.call('ZCOUNT', KEYS[1], t24h, sts) + added,
  redis.call('ZCOUNT', KEYS[6], t1h, '+inf') + newly(last_paid, ts - W1H),
  redis.call('ZCOUNT', KEYS[6], t24h, '+inf') + newly(last_paid, ts - W24H),
  redis.call('ZCOUNT', KEYS[3], t24h, sts) + first_time,
  s(hour_sum(KEYS[7], hour) + added_amount), s(hour_sum(KEYS[2], hour)), s(fs),
  known_int(meta[2]), known_int(meta[3]), known_int(meta[4]),
}, ',')
if ARGV[5] == '1' then return facts end

if first_time == 1 then
  redis.call('ZADD', KEYS[3], sts, payer)
  if not first_paid then redis.call('ZREMRANGEBYRANK', KEYS[3], '0', KEEP_NEWEST) end
end
if added == 1 then
  redis.call('ZADD', KEYS[1], sts, member)
  redis.call('HINCRBY', KEYS[7], shour, amount)
  redis.call('ZREMRANGEBYRANK', KEYS[1], '0', KEEP_NEWEST)
end
if redis.call('ZADD', KEYS[6], 'GT', sts, payer) == 1 then
  redis.call('ZREMRANGEBYRANK', KEYS[6], '0', KEEP_NEWEST)
end
local housekeeping = hour > (tonumber(meta[5]) or -1)  -- only forward: order-independent
-- One write of the meta fields this transfer changed (before its TTL is set).
local changed = {}
if not earlier_seen then changed[#changed + 1] = 'fs'; changed[#changed + 1] = sts end
if housekeeping then changed[#changed + 1] = 'tq'; changed[#changed + 1] = shour end
if #changed > 0 then redis.call('HSET', KEYS[4], unpack(changed)) end
if housekeeping then
  local oldest = '(' .. s(ts - RETENTION)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', oldest)
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', oldest)
  if redis.call('HLEN', KEYS[7]) > 30 then
    for _, field in ipairs(redis.call('HKEYS', KEYS[7])) do
      if tonumber(field) < hour - 26 then redis.call('HDEL', KEYS[7], field) end
    end
  end
  for _, i in ipairs({1, 3, 4, 6, 7}) do redis.call('EXPIRE', KEYS[i], STATE_TTL) end
end
redis.call('SET', KEYS[5], facts, 'EX', DEDUPE_TTL)
return facts
