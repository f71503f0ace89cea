-- Store one alert and index it, atomically, only if it is new (idempotent by alert_id).
-- KEYS: alert body, then every index sorted set it belongs to (all in the {al} slot)
-- ARGV: alert_id, ts_ms, alert json
-- Returns 1 if stored now, else the body kept since (a replay changes nothing, so an
-- investigator's status on it is never reset, and the caller republishes the current one).
local kept = redis.call('GET', KEYS[1])
if kept then return kept end
redis.call('SET', KEYS[1], ARGV[3])
for i = 2, #KEYS do redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1]) end
return 1
