-- Delete one closed alert past retention, with its features, history and index entries, and
-- take it out of its case (a case left without alerts goes with it), atomically and only if
-- it is still closed (an action taken meanwhile keeps it).
-- KEYS: alert body, features, history, the alert → case hash, then every index it belongs to
--       (all in the {al} slot)
-- ARGV: alert_id, closed statuses (space-separated), the key prefix of cases, the statuses,
--       least settled first
-- Returns 1 if deleted, 0 if it is gone or no longer closed.
__CASE_STATUS__
local body = redis.call('GET', KEYS[1])
if not body then return 0 end
local status = cjson.decode(body)['status']
local closed = false
for s in string.gmatch(ARGV[2], '%S+') do
  if s == status then closed = true end
end
if not closed then return 0 end
for i = 5, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])

local case_id = redis.call('HGET', KEYS[4], ARGV[1])
if not case_id then return 1 end
redis.call('HDEL', KEYS[4], ARGV[1])
local prefix = ARGV[3]
local record = prefix .. ':c:' .. case_id
redis.call('ZREM', record .. ':al', ARGV[1])
if redis.call('HEXISTS', record, 'status') == 0 then return 1 end
local was = redis.call('HGET', record, 'status')
local severity = redis.call('HGET', record, 'severity')
if redis.call('HINCRBY', record, 'alerts', -1) <= 0 then
  -- Its last alert is gone: the case goes, from every index too.
  redis.call('ZREM', prefix .. ':cx:all', case_id)
  redis.call('ZREM', prefix .. ':cx:status:' .. was, case_id)
  redis.call('ZREM', prefix .. ':cx:severity:' .. severity, case_id)
  local accounts = redis.call('HKEYS', record .. ':ac')
  for _, account in ipairs(accounts) do
    redis.call('ZREM', prefix .. ':cx:account:' .. account, case_id)
  end
  redis.call('DEL', record, record .. ':al', record .. ':ac')
  return 1
end
redis.call('HINCRBY', record, 'n:' .. status, -1)
local order = {}
for s in string.gmatch(ARGV[4], '%S+') do order[#order + 1] = s end
local now = case_status(record, order)
if now ~= was then
  local priority = redis.call('HGET', record, 'priority')
  redis.call('ZREM', prefix .. ':cx:status:' .. was, case_id)
  redis.call('ZADD', prefix .. ':cx:status:' .. now, priority, case_id)
  redis.call('HSET', record, 'status', now)
end
return 1
