-- Apply one transfer to its payer's keys (one hash slot) and return the payer facts.
-- KEYS: out, in, payees, devices, meta, facts-of-this-transfer, phones, ips, identifiers,
--       payees_last, payers_last, out_amount, in_amount
-- ARGV: tid, ts, payee, amount, device|'', retention_ms, cap, state_ttl_s, dedupe_ttl_s,
--       w1h, w24h, w7d, phone|'', ip|'', raw device|'', raw phone|'', raw ip|''
-- Returns {first_delivery 0|1, "comma-separated PayerFacts"}; a redelivery returns the facts
-- stored by its first delivery and changes nothing. Every window fact is a count or a sum
-- read in O(log n), never a scan of the window: busy accounts cost what quiet ones cost.
-- Devices, phones and IPs are pseudonyms; `identifiers` maps each back to its raw value so
-- that investigators (and only they, audited) can see it.
local stored = redis.call('GET', KEYS[6])
if stored then return {0, stored} end

local function s(n) return string.format('%d', n) end
local tid, ts, payee, amount = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local retention, cap, state_ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local w1h, w24h, w7d = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local hour = math.floor(ts / 3600000)

local function amount_of(member) return tonumber(string.sub(member, string.match(member, '.*()|') + 1)) end
local function hour_sum(key)
  local fields = {}
  for i = 0, 23 do fields[i + 1] = s(hour - i) end
  local total = 0
  for _, v in ipairs(redis.call('HMGET', key, unpack(fields))) do
    if v then total = total + tonumber(v) end
  end
  return total
end
local function add_to_hour(key)
  redis.call('HINCRBY', key, s(hour), s(amount))
  if redis.call('HLEN', key) > 30 then
    for _, field in ipairs(redis.call('HKEYS', key)) do
      if tonumber(field) < hour - 26 then redis.call('HDEL', key, field) end
    end
  end
end
local function trim(key, by_time)
  if by_time then redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. s(ts - retention)) end
  redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
end

local meta = redis.call('HMGET', KEYS[5], 'fs', 'on', 'os', 'oa', 'by', 'ib')
local fs = tonumber(meta[1])
if (not fs) or fs > ts then fs = ts; redis.call('HSET', KEYS[5], 'fs', s(ts)) end

-- Retained outgoing history (count and sum), kept in step with every removal.
local out_n, out_sum = tonumber(meta[2]) or 0, tonumber(meta[3]) or 0
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. s(ts - retention))
for _, m in ipairs(expired) do out_n = out_n - 1; out_sum = out_sum - amount_of(m) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. s(ts - retention)) end
local n_prior, amt_prior = out_n, out_sum

local first_time = 0
local old = redis.call('ZSCORE', KEYS[3], payee)
if (not old) or tonumber(old) > ts then
  first_time = 1
  redis.call('ZADD', KEYS[3], s(ts), payee)
  trim(KEYS[3], false)
end
if redis.call('ZADD', KEYS[1], s(ts), tid .. '|' .. payee .. '|' .. ARGV[4]) == 1 then
  out_n = out_n + 1
  out_sum = out_sum + amount
  if out_n > cap then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, out_n - cap - 1)) do
      out_n = out_n - 1; out_sum = out_sum - amount_of(m)
    end
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(cap + 1))
  end
  add_to_hour(KEYS[12])
end
redis.call('HSET', KEYS[5], 'on', s(out_n), 'os', s(out_sum))
redis.call('ZADD', KEYS[10], 'GT', s(ts), payee)
trim(KEYS[10], true)
for _, slot in ipairs({{4, 5, 15}, {7, 13, 16}, {8, 14, 17}}) do
  local pseudonym = ARGV[slot[2]]
  if pseudonym ~= '' then
    redis.call('ZADD', KEYS[slot[1]], 'GT', s(ts), pseudonym)
    redis.call('HSET', KEYS[9], pseudonym, ARGV[slot[3]])
    trim(KEYS[slot[1]], true)
  end
end

local last_in = -1
local last = redis.call('ZREVRANGEBYSCORE', KEYS[2], s(ts), '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #last > 0 then last_in = tonumber(last[2]) end
local facts = table.concat({
  s(redis.call('ZCOUNT', KEYS[1], s(ts - w1h), s(ts))),
  s(redis.call('ZCOUNT', KEYS[1], s(ts - w24h), s(ts))),
  s(redis.call('ZCOUNT', KEYS[10], s(ts - w1h), '+inf')),
  s(redis.call('ZCOUNT', KEYS[10], s(ts - w24h), '+inf')),
  s(redis.call('ZCOUNT', KEYS[3], s(ts - w24h), s(ts))),
  s(first_time), s(hour_sum(KEYS[12])), s(n_prior), s(amt_prior),
  s(redis.call('ZCOUNT', KEYS[2], s(ts - w24h), s(ts))),
  s(hour_sum(KEYS[13])),
  s(redis.call('ZCOUNT', KEYS[11], s(ts - w24h), '+inf')),
  s(last_in), s(fs), meta[4] or '-1', meta[5] or '-1', meta[6] or '-1',
  s(redis.call('ZCOUNT', KEYS[4], s(ts - w7d), '+inf')),
}, ',')
redis.call('SET', KEYS[6], facts, 'EX', ARGV[9])
for _, i in ipairs({1, 3, 4, 5, 7, 8, 9, 10, 12}) do redis.call('EXPIRE', KEYS[i], state_ttl) end
return {1, facts}
