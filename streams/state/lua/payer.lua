-- One transfer on its payer's keys (one hash slot): compute the payer facts, then apply it.
-- KEYS: out, in, payees, devices, meta, facts-of-this-transfer, phones, ips, identifiers,
--       payees_last, payers_last, out_amount, in_amount
-- ARGV: tid, ts, payee, amount, device|'', phone|'', ip|'', raw device, raw phone, raw ip,
--       dry ('1' = screening: compute only, write nothing)
-- Returns {first_delivery 0|1, "comma-separated PayerFacts"}. Facts are the current state
-- plus this transfer's own contribution, computed before any write, so a dry run (screening)
-- and the real one agree exactly. A redelivery returns the facts stored by its first delivery
-- and changes nothing. Every fact is a count (O(log n)) or a sum of at most ~30 hour buckets; housekeeping
-- (time trims, TTLs) runs when the account's event time enters a new hour. Devices, phones
-- and IPs are pseudonyms; `identifiers` maps each to its raw value for audited views.
local stored = redis.call('GET', KEYS[6])
if stored then return {0, stored} end

__PRELUDE__
local RETENTION, CAP = __RETENTION__, __CAP__
-- Arguments to redis.call are passed as strings: a Lua number costs a printf in each call.
local STATE_TTL, DEDUPE_TTL, KEEP_NEWEST = '__STATE_TTL__', '__DEDUPE_TTL__', '__KEEP_NEWEST__'
local W1H, W24H, W7D = __W1H__, __W24H__, __W7D__
local tid, sts, payee, amount = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local ts = tonumber(sts)
local hour = math.floor(ts / 3600000)
local t1h, t24h, t7d = s(ts - W1H), s(ts - W24H), s(ts - W7D)
local member = tid .. '|' .. payee .. '|' .. ARGV[4]
local shour = s(hour)

local meta = redis.call('HMGET', KEYS[5], 'fs', 'on', 'os', 'oa', 'by', 'ib', 'tp')
local fs = tonumber(meta[1])
local earlier_seen = fs and fs <= ts
if not earlier_seen then fs = ts end
local first_paid = redis.call('ZSCORE', KEYS[3], payee)
local first_time = 0
if (not first_paid) or tonumber(first_paid) > ts then first_time = 1 end
-- A replay past the dedupe horizon finds its entry already there and adds nothing.
local added, added_amount = 1, amount
if redis.call('ZSCORE', KEYS[1], member) then added, added_amount = 0, 0 end
local last_paid = redis.call('ZSCORE', KEYS[10], payee)
local device = ARGV[5]
local device_new = 0
if device ~= '' then device_new = newly(redis.call('ZSCORE', KEYS[4], device), ts - W7D) end
local last_in = -1
local last = redis.call('ZREVRANGEBYSCORE', KEYS[2], sts, '-inf', 'WITHSCORES', 'LIMIT', '0', '1')
if #last > 0 then last_in = tonumber(last[2]) end
-- Retained outgoing history (count and sum, kept in step with every removal), without the
-- entries past retention that housekeeping has yet to drop.
local function amount_of(m) return tonumber(string.sub(m, string.match(m, '.*()|') + 1)) end
local oldest = '(' .. s(ts - RETENTION)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', oldest)
local out_n, out_sum = tonumber(meta[2]) or 0, tonumber(meta[3]) or 0
for _, m in ipairs(expired) do out_n = out_n - 1; out_sum = out_sum - amount_of(m) end
local prior_n, prior_sum = out_n, out_sum

-- Counts are small integers (tostring is exact); sums and times go through %d.
local facts = table.concat({
  redis.call('ZCOUNT', KEYS[1], t1h, sts) + added,
  redis.call('ZCOUNT', KEYS[1], t24h, sts) + added,
  redis.call('ZCOUNT', KEYS[10], t1h, '+inf') + newly(last_paid, ts - W1H),
  redis.call('ZCOUNT', KEYS[10], t24h, '+inf') + newly(last_paid, ts - W24H),
  redis.call('ZCOUNT', KEYS[3], t24h, sts) + first_time,
  first_time, s(hour_sum(KEYS[12], hour) + added_amount), prior_n, s(prior_sum),
  redis.call('ZCOUNT', KEYS[2], t24h, sts), s(hour_sum(KEYS[13], hour)),
  redis.call('ZCOUNT', KEYS[11], t24h, '+inf'),
  s(last_in), s(fs), known_int(meta[4]), known_int(meta[5]), known_int(meta[6]),
  redis.call('ZCOUNT', KEYS[4], t7d, '+inf') + device_new,
}, ',')
if ARGV[11] == '1' then return {1, facts} end

local housekeeping = hour > (tonumber(meta[7]) or -1)  -- only forward: order-independent
if first_time == 1 then
  redis.call('ZADD', KEYS[3], sts, payee)
  if not first_paid then redis.call('ZREMRANGEBYRANK', KEYS[3], '0', KEEP_NEWEST) end
end
if not housekeeping then
  out_n, out_sum = tonumber(meta[2]) or 0, tonumber(meta[3]) or 0  -- expired stay till then
elseif #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', oldest)
end
if added == 1 then
  redis.call('ZADD', KEYS[1], sts, member)
  out_n = out_n + 1
  out_sum = out_sum + amount
  if out_n > CAP then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, out_n - CAP - 1)) do
      out_n = out_n - 1; out_sum = out_sum - amount_of(m)
    end
    redis.call('ZREMRANGEBYRANK', KEYS[1], '0', KEEP_NEWEST)
  end
  redis.call('HINCRBY', KEYS[12], shour, ARGV[4])
end
if redis.call('ZADD', KEYS[10], 'GT', sts, payee) == 1 then
  redis.call('ZREMRANGEBYRANK', KEYS[10], '0', KEEP_NEWEST)
end
-- A raw identifier lives exactly as long as its pseudonym in the window it explains: it is
-- dropped with it, by the cap here and by the time trim in housekeeping.
local function forget(members)
  if #members > 0 then redis.call('HDEL', KEYS[9], unpack(members)) end
end
for _, slot in ipairs({{4, 5, 8}, {7, 6, 9}, {8, 7, 10}}) do
  local pseudonym = ARGV[slot[2]]
  if pseudonym ~= '' and redis.call('ZADD', KEYS[slot[1]], 'GT', sts, pseudonym) == 1 then
    redis.call('HSET', KEYS[9], pseudonym, ARGV[slot[3]])
    forget(redis.call('ZRANGE', KEYS[slot[1]], '0', KEEP_NEWEST))
    redis.call('ZREMRANGEBYRANK', KEYS[slot[1]], '0', KEEP_NEWEST)
    if not housekeeping then  -- else housekeeping sets these TTLs below
      redis.call('EXPIRE', KEYS[slot[1]], STATE_TTL)
      redis.call('EXPIRE', KEYS[9], STATE_TTL)
    end
  end
end
-- One write of the meta fields this transfer changed (before its TTL is set).
local changed = {'on', s(out_n), 'os', s(out_sum)}
if not earlier_seen then changed[#changed + 1] = 'fs'; changed[#changed + 1] = sts end
if housekeeping then changed[#changed + 1] = 'tp'; changed[#changed + 1] = shour end
redis.call('HSET', KEYS[5], unpack(changed))
if housekeeping then
  redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', oldest)
  for _, i in ipairs({4, 7, 8}) do
    forget(redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', oldest))
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', oldest)
  end
  if redis.call('HLEN', KEYS[12]) > 30 then
    for _, field in ipairs(redis.call('HKEYS', KEYS[12])) do
      if tonumber(field) < hour - 26 then redis.call('HDEL', KEYS[12], field) end
    end
  end
  for _, i in ipairs({1, 3, 4, 5, 7, 8, 9, 10, 12}) do redis.call('EXPIRE', KEYS[i], STATE_TTL) end
end
redis.call('SET', KEYS[6], facts, 'EX', DEDUPE_TTL)
return {1, facts}
