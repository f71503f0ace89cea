-- One transfer on a device / phone / IP (one hash slot): distinct payer accounts in 7 days,
-- this transfer's payer included, computed before any write.
-- KEYS: accounts, facts-of-this-transfer
-- ARGV: tid, ts, account, dry ('1' = screening: compute only, write nothing)
-- Returns the count; a redelivery returns the stored count unchanged.
local stored = redis.call('GET', KEYS[2])
if stored then return tonumber(stored) end

__PRELUDE__
local RETENTION = __ENTITY_RETENTION__
-- Arguments to redis.call are passed as strings: a Lua number costs a printf in each call.
local STATE_TTL, DEDUPE_TTL, KEEP_NEWEST = '__STATE_TTL__', '__DEDUPE_TTL__', '__KEEP_NEWEST__'
local W7D = __W7D__
local ts = tonumber(ARGV[2])
local last = redis.call('ZSCORE', KEYS[1], ARGV[3])
local count = redis.call('ZCOUNT', KEYS[1], s(ts - W7D), '+inf')
if (not last) or tonumber(last) < ts - W7D then count = count + 1 end
if ARGV[4] == '1' then return count end

if redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[3]) == 1 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. s(ts - RETENTION))
  redis.call('ZREMRANGEBYRANK', KEYS[1], '0', KEEP_NEWEST)
end
redis.call('SET', KEYS[2], count, 'EX', DEDUPE_TTL)
redis.call('EXPIRE', KEYS[1], STATE_TTL)
return count
