-- Apply one workflow action to an alert, atomically: check its status, rewrite the status in
-- the body, move the id between status indexes, append a history entry.
-- KEYS: alert body, history list, then one status index per status named in ARGV[9], in that
--       order (all in the {al} slot)
-- ARGV: [1] alert_id, [2] action, [3] target status, [4] allowed source statuses
--       (space-separated), [5] by key id, [6] by name, [7] by role, [8] at (RFC 3339),
--       [9] every status (space-separated, aligned with KEYS[3..]), [10] note,
--       [11] the history length the caller judged the move on ('' when it judged none)
-- Returns {1, from} when applied, {0, current} when the action is not allowed, {-1} missing,
-- {-2} when the history has grown since the caller read it (the four-eyes rule re-checks).
local body = redis.call('GET', KEYS[1])
if not body then return {-1} end
if ARGV[11] ~= '' and redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[11]) then return {-2} end
local current = cjson.decode(body)['status']
local allowed = false
for status in string.gmatch(ARGV[4], '%S+') do
  if status == current then allowed = true end
end
if not allowed then return {0, current} end

-- The body is msgspec's compact JSON with `status` just before `created_at`; replacing that
-- text (not re-encoding with cjson) keeps every other byte, numbers and empty lists included.
local old_field = ',"status":"' .. current .. '","created_at":'
local first, last = string.find(body, old_field, 1, true)
if not first then return redis.error_reply('alert body has no status field') end
local new_body = string.sub(body, 1, first - 1) .. ',"status":"' .. ARGV[3] .. '","created_at":'
  .. string.sub(body, last + 1)
redis.call('SET', KEYS[1], new_body)

local index = {}
local position = 3
for status in string.gmatch(ARGV[9], '%S+') do
  index[status] = KEYS[position]
  position = position + 1
end
local ts = redis.call('ZSCORE', index[current], ARGV[1])
  or string.format('%d', cjson.decode(body)['ts_ms'])
redis.call('ZREM', index[current], ARGV[1])
redis.call('ZADD', index[ARGV[3]], ts, ARGV[1])

redis.call('RPUSH', KEYS[2], cjson.encode({
  action = ARGV[2], from = current, to = ARGV[3], at = ARGV[8], note = ARGV[10],
  by = {key_id = ARGV[5], name = ARGV[6], role = ARGV[7]},
}))
return {1, current}
