-- The alert functions (see streams/state/alert_store.py): every key in the {al} slot.

-- Store one alert and index it, atomically, only if it is new (idempotent by alert_id).
-- KEYS: alert body, then every index sorted set it belongs to (all in the {al} slot)
-- ARGV: alert_id, ts_ms, alert json
-- Returns 1 if stored now, else the body kept since (a replay changes nothing, so an
-- investigator's status on it is never reset, and the caller republishes the current one).
local function alert_put(keys, args)
  local kept = redis.call('GET', keys[1])
  if kept then return kept end
  redis.call('SET', keys[1], args[3])
  for i = 2, #keys do redis.call('ZADD', keys[i], args[2], args[1]) end
  return 1
end

-- Apply one workflow action to an alert, atomically: check its status, rewrite the status in
-- the body, move the id between status indexes, append a history entry.
-- KEYS: alert body, history list, then one status index per status named in args[9], in that
--       order (all in the {al} slot)
-- ARGV: [1] alert_id, [2] action, [3] target status, [4] allowed source statuses
--       (space-separated), [5] by key id, [6] by name, [7] by role, [8] at (RFC 3339),
--       [9] every status (space-separated, aligned with keys[3..]), [10] note,
--       [11] the history length the caller judged the move on ('' when it judged none)
-- Returns {1, from} when applied, {0, current} when the action is not allowed, {-1} missing,
-- {-2} when the history has grown since the caller read it (the four-eyes rule re-checks).
local function alert_action(keys, args)
  local body = redis.call('GET', keys[1])
  if not body then return {-1} end
  if args[11] ~= '' and redis.call('LLEN', keys[2]) ~= tonumber(args[11]) then return {-2} end
  local current = cjson.decode(body)['status']
  local allowed = false
  for status in string.gmatch(args[4], '%S+') do
    if status == current then allowed = true end
  end
  if not allowed then return {0, current} end

  -- The body is msgspec's compact JSON with `status` just before `created_at`; replacing that
  -- text (not re-encoding with cjson) keeps every other byte, numbers and empty lists included.
  local old_field = ',"status":"' .. current .. '","created_at":'
  local first, last = string.find(body, old_field, 1, true)
  if not first then return redis.error_reply('alert body has no status field') end
  local new_body = string.sub(body, 1, first - 1) .. ',"status":"' .. args[3] .. '","created_at":'
    .. string.sub(body, last + 1)
  redis.call('SET', keys[1], new_body)

  local index = {}
  local position = 3
  for status in string.gmatch(args[9], '%S+') do
    index[status] = keys[position]
    position = position + 1
  end
  local ts = redis.call('ZSCORE', index[current], args[1])
    or string.format('%d', cjson.decode(body)['ts_ms'])
  redis.call('ZREM', index[current], args[1])
  redis.call('ZADD', index[args[3]], ts, args[1])

  redis.call('RPUSH', keys[2], cjson.encode({
    action = args[2], from = current, to = args[3], at = args[8], note = args[10],
    by = {key_id = args[5], name = args[6], role = args[7]},
  }))
  return {1, current}
end

-- Delete one closed alert past retention, with its features, history and index entries,
-- atomically and only if it is still closed (an action taken meanwhile keeps it).
-- KEYS: alert body, features, history, then every index it belongs to (all in the {al} slot)
-- ARGV: alert_id, closed statuses (space-separated)
-- Returns 1 if deleted, 0 if it is gone or no longer closed.
local function alert_purge(keys, args)
  local body = redis.call('GET', keys[1])
  if not body then return 0 end
  local status = cjson.decode(body)['status']
  local closed = false
  for s in string.gmatch(args[2], '%S+') do
    if s == status then closed = true end
  end
  if not closed then return 0 end
  for i = 4, #keys do redis.call('ZREM', keys[i], args[1]) end
  redis.call('DEL', keys[1], keys[2], keys[3])
  return 1
end

register('alert_put', alert_put)
register('alert_action', alert_action)
register('alert_purge', alert_purge)
