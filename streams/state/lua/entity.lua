-- Apply one transfer to a device / phone / IP (one hash slot): distinct payer accounts in 7d.
-- KEYS: accounts, facts-of-this-transfer
-- ARGV: tid, ts, account, retention_ms, cap, state_ttl_s, dedupe_ttl_s, w7d
-- Returns the count; a redelivery returns the stored count unchanged.
local stored = redis.call('GET', KEYS[2])
if stored then return tonumber(stored) end

local function s(n) return string.format('%d', n) end
local ts = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'GT', s(ts), ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. s(ts - tonumber(ARGV[4])))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[5]) + 1))
local count = redis.call('ZCOUNT', KEYS[1], s(ts - tonumber(ARGV[8])), '+inf')
redis.call('SET', KEYS[2], s(count), 'EX', ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return count
