-- Apply one transfer to a device / phone / IP (one hash slot): distinct payer accounts in 7d.
-- KEYS: accounts, facts-of-this-transfer
-- ARGV: tid, ts, account
-- Returns the count; a redelivery returns the stored count unchanged.
local stored = redis.call('GET', KEYS[2])
if stored then return tonumber(stored) end

local RETENTION, CAP, STATE_TTL, DEDUPE_TTL = __ENTITY_RETENTION__, __CAP__, __STATE_TTL__, __DEDUPE_TTL__
local W7D = __W7D__
local function s(n) return string.format('%d', n) end
local ts = tonumber(ARGV[2])
if redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[3]) == 1 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. s(ts - RETENTION))
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(CAP + 1))
end
local count = redis.call('ZCOUNT', KEYS[1], s(ts - W7D), '+inf')
redis.call('SET', KEYS[2], count, 'EX', DEDUPE_TTL)
redis.call('EXPIRE', KEYS[1], STATE_TTL)
return count
