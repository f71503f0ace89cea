-- Store one alert and index it, atomically, only if it is new (idempotent by alert_id), and
-- append `alert.created` to the alert event stream (webhooks and the update publisher read it).
-- KEYS: alert body, event stream, then every index sorted set it belongs to (all in {al})
-- ARGV: alert_id, ts_ms, alert json, origin (`worker` or `api`), the stream's approximate cap
-- Returns 1 if stored now, else the body kept since (a replay changes nothing, so an
-- investigator's status on it is never reset, and the caller republishes the current one).
local kept = redis.call('GET', KEYS[1])
if kept then return kept end
redis.call('SET', KEYS[1], ARGV[3])
for i = 3, #KEYS do redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
  'type', 'alert.created', 'alert_id', ARGV[1], 'origin', ARGV[4])
return 1
