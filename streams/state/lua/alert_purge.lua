-- Delete one closed alert past retention, with its features, history and index entries,
-- atomically and only if it is still closed (an action taken meanwhile keeps it).
-- KEYS: alert body, features, history, then every index it belongs to (all in the {al} slot)
-- ARGV: alert_id, closed statuses (space-separated)
-- Returns 1 if deleted, 0 if it is gone or no longer closed.
local body = redis.call('GET', KEYS[1])
if not body then return 0 end
local status = cjson.decode(body)['status']
local closed = false
for s in string.gmatch(ARGV[2], '%S+') do
  if s == status then closed = true end
end
if not closed then return 0 end
for i = 4, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
