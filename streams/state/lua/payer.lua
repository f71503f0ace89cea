-- Apply one transfer to its payer's keys (one hash slot) and return the payer facts.
-- KEYS: out, in, payees, devices, meta, facts-of-this-transfer, phones, ips, identifiers
-- ARGV: tid, ts, payee, amount, device|'', retention_ms, cap, state_ttl_s, dedupe_ttl_s,
--       w1h, w24h, w7d, w30d, phone|'', ip|'', raw device|'', raw phone|'', raw ip|''
-- Devices, phones and IPs are pseudonyms; `identifiers` maps each back to the raw value so
-- that investigators (and only they, audited) can see it.
-- Returns {first_delivery 0|1, "comma-separated PayerFacts"}; a redelivery returns the
-- facts stored by its first delivery and changes nothing.
local stored = redis.call('GET', KEYS[6])
if stored then return {0, stored} end

local function s(n) return string.format('%d', n) end
local tid, ts, payee, amount, device = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local retention, cap, state_ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local w1h, w24h, w7d, w30d = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])

local fs = tonumber(redis.call('HGET', KEYS[5], 'fs'))
if (not fs) or fs > ts then fs = ts; redis.call('HSET', KEYS[5], 'fs', s(ts)) end

local first_time = 0
local old = redis.call('ZSCORE', KEYS[3], payee)
if (not old) or tonumber(old) > ts then
  first_time = 1
  redis.call('ZADD', KEYS[3], s(ts), payee)
end
redis.call('ZADD', KEYS[1], s(ts), tid .. '|' .. payee .. '|' .. amount)
local min_score = '(' .. s(ts - retention)
local over = -(cap + 1)
for i, slot in ipairs({{4, 5, 16}, {7, 14, 17}, {8, 15, 18}}) do
  local key, pseudonym, raw = KEYS[slot[1]], ARGV[slot[2]], ARGV[slot[3]]
  if pseudonym ~= '' then
    redis.call('ZADD', key, 'GT', s(ts), pseudonym)
    redis.call('HSET', KEYS[9], pseudonym, raw)
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', min_score)
  redis.call('ZREMRANGEBYRANK', key, 0, over)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', min_score)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, over)

local out_1h, out_24h, amt_24h, n_prior, amt_prior = 0, 0, 0, 0, 0
local payees_1h, payees_24h, n_payees_1h, n_payees_24h = {}, {}, 0, 0
local entries = redis.call('ZRANGEBYSCORE', KEYS[1], s(ts - w30d), s(ts), 'WITHSCORES')
for i = 1, #entries, 2 do
  local m, score = entries[i], tonumber(entries[i + 1])
  local first_sep = string.find(m, '|', 1, true)
  local last_sep = string.match(m, '.*()|')
  local etid = string.sub(m, 1, first_sep - 1)
  local party = string.sub(m, first_sep + 1, last_sep - 1)
  local amt = tonumber(string.sub(m, last_sep + 1))
  if score >= ts - w1h then
    out_1h = out_1h + 1
    if not payees_1h[party] then payees_1h[party] = true; n_payees_1h = n_payees_1h + 1 end
  end
  if score >= ts - w24h then
    out_24h = out_24h + 1
    amt_24h = amt_24h + amt
    if not payees_24h[party] then payees_24h[party] = true; n_payees_24h = n_payees_24h + 1 end
  end
  if etid ~= tid then
    n_prior = n_prior + 1
    amt_prior = amt_prior + amt
  end
end

local in_24h, in_amt_24h, payers, n_payers = 0, 0, {}, 0
entries = redis.call('ZRANGEBYSCORE', KEYS[2], s(ts - w24h), s(ts))
for i = 1, #entries do
  local m = entries[i]
  local first_sep = string.find(m, '|', 1, true)
  local last_sep = string.match(m, '.*()|')
  local party = string.sub(m, first_sep + 1, last_sep - 1)
  in_24h = in_24h + 1
  in_amt_24h = in_amt_24h + tonumber(string.sub(m, last_sep + 1))
  if not payers[party] then payers[party] = true; n_payers = n_payers + 1 end
end
local last_in = -1
local last = redis.call('ZREVRANGEBYSCORE', KEYS[2], s(ts), '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #last > 0 then last_in = tonumber(last[2]) end

local profile = redis.call('HMGET', KEYS[5], 'oa', 'by', 'ib')
local facts = table.concat({
  s(out_1h), s(out_24h), s(n_payees_1h), s(n_payees_24h),
  s(redis.call('ZCOUNT', KEYS[3], s(ts - w24h), s(ts))), s(first_time),
  s(amt_24h), s(n_prior), s(amt_prior), s(in_24h), s(in_amt_24h), s(n_payers),
  s(last_in), s(fs), profile[1] or '-1', profile[2] or '-1', profile[3] or '-1',
  s(redis.call('ZCOUNT', KEYS[4], s(ts - w7d), '+inf')),
}, ',')
redis.call('SET', KEYS[6], facts, 'EX', ARGV[9])
for _, i in ipairs({1, 2, 3, 4, 5, 7, 8, 9}) do redis.call('EXPIRE', KEYS[i], state_ttl) end
return {1, facts}
