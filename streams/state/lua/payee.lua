-- Apply one transfer to its payee's keys (one hash slot) and return the payee facts.
-- KEYS: in, out, payers, meta, facts-of-this-transfer
-- ARGV: tid, ts, payer, amount, retention_ms, cap, state_ttl_s, dedupe_ttl_s, w1h, w24h
-- Returns "comma-separated PayeeFacts"; a redelivery returns the stored facts unchanged.
local stored = redis.call('GET', KEYS[5])
if stored then return stored end

local function s(n) return string.format('%d', n) end
local tid, ts, payer, amount = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local retention, cap, state_ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local w1h, w24h = tonumber(ARGV[9]), tonumber(ARGV[10])

local fs = tonumber(redis.call('HGET', KEYS[4], 'fs'))
if (not fs) or fs > ts then fs = ts; redis.call('HSET', KEYS[4], 'fs', s(ts)) end
local old = redis.call('ZSCORE', KEYS[3], payer)
if (not old) or tonumber(old) > ts then redis.call('ZADD', KEYS[3], s(ts), payer) end
redis.call('ZADD', KEYS[1], s(ts), tid .. '|' .. payer .. '|' .. amount)
local over = -(cap + 1)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. s(ts - retention))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, over)

local function window(key, from)
  local n, amt, parties, n_parties = 0, 0, {}, 0
  local entries = redis.call('ZRANGEBYSCORE', key, s(from), s(ts))
  for i = 1, #entries do
    local m = entries[i]
    local first_sep = string.find(m, '|', 1, true)
    local last_sep = string.match(m, '.*()|')
    local party = string.sub(m, first_sep + 1, last_sep - 1)
    n = n + 1
    amt = amt + tonumber(string.sub(m, last_sep + 1))
    if not parties[party] then parties[party] = true; n_parties = n_parties + 1 end
  end
  return n, amt, n_parties
end
local in_1h, _, payers_1h = window(KEYS[1], ts - w1h)
local in_24h, in_amt_24h, payers_24h = window(KEYS[1], ts - w24h)
local _, out_amt_24h, _ = window(KEYS[2], ts - w24h)

local profile = redis.call('HMGET', KEYS[4], 'oa', 'by', 'ib')
local facts = table.concat({
  s(in_1h), s(in_24h), s(payers_1h), s(payers_24h),
  s(redis.call('ZCOUNT', KEYS[3], s(ts - w24h), s(ts))),
  s(in_amt_24h), s(out_amt_24h), s(fs),
  profile[1] or '-1', profile[2] or '-1', profile[3] or '-1',
}, ',')
redis.call('SET', KEYS[5], facts, 'EX', ARGV[8])
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], state_ttl) end
return facts
