-- The alert functions (see streams/state/alert_store.py) and the case functions (see
-- streams/state/case_store.py): every key in the {al} slot.

-- A case's status from how many of its alerts are in each status (fields `n:<status>`): the
-- first of `order` (least settled first) that any alert has; `dismissed` when none.
local function case_status(record, order)
  for _, status in ipairs(order) do
    local n = tonumber(redis.call('HGET', record, 'n:' .. status) or '0')
    if n > 0 then return status end
  end
  return 'dismissed'
end

-- What case grouping reads for a batch of alerts (shared by case_read and case_write,
-- which reads it again to check nothing changed since). Every key lives in the {al} slot;
-- names are built from the prefix in the request.
-- `request` = {prefix, alert ids, accounts (suspects and counterparties)}.
-- Returns a flat list of strings, section by section (see streams/state/case_store.py):
--   the case of each alert; per account its suspect case, the case it is in, and its links
--   (`i` then `o`); per other account those links name, its suspect case and its links;
--   per case read, its summary fields.
local function case_snapshot(request)
  local prefix = request[1]
  local ids, accounts = request[2], request[3]
  local out = {}
  local function push(value) out[#out + 1] = value end
  local cases, seen_case = {}, {}
  local function note_case(case_id)
    if case_id and case_id ~= '' and not seen_case[case_id] then
      seen_case[case_id] = true
      cases[#cases + 1] = case_id
    end
  end
  local function push_links(key)
    local rows = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    push(tostring(#rows / 2))
    for i = 1, #rows do push(rows[i]) end
    return rows
  end
  push(tostring(#ids))
  for _, alert_id in ipairs(ids) do
    local case_id = redis.call('HGET', prefix .. ':ac', alert_id) or ''
    push(case_id)
    note_case(case_id)
  end
  local known, others, other_seen = {}, {}, {}
  for _, account in ipairs(accounts) do known[account] = true end
  push(tostring(#accounts))
  for _, account in ipairs(accounts) do
    local case_id = redis.call('GET', prefix .. ':sx:' .. account) or ''
    push(case_id)
    note_case(case_id)
    local in_case = redis.call('GET', prefix .. ':px:' .. account) or ''
    push(in_case)
    note_case(in_case)
    for _, kind in ipairs({'i', 'o'}) do
      local rows = push_links(prefix .. ':lk:' .. kind .. ':' .. account)
      for i = 1, #rows, 2 do
        local party = rows[i]
        if not known[party] and not other_seen[party] then
          other_seen[party] = true
          others[#others + 1] = party
        end
      end
    end
  end
  table.sort(others)
  push(tostring(#others))
  for _, account in ipairs(others) do
    push(account)
    local case_id = redis.call('GET', prefix .. ':sx:' .. account) or ''
    push(case_id)
    note_case(case_id)
    push_links(prefix .. ':lk:i:' .. account)
    push_links(prefix .. ':lk:o:' .. account)
  end
  table.sort(cases)
  push(tostring(#cases))
  for _, case_id in ipairs(cases) do
    push(case_id)
    local fields = redis.call('HGETALL', prefix .. ':c:' .. case_id)
    push(tostring(#fields / 2))
    for i = 1, #fields do push(fields[i]) end
  end
  return out
end

local function snapshot_digest(out)
  local parts = {}
  for i, value in ipairs(out) do parts[i] = #value .. ':' .. value end
  return redis.sha1hex(table.concat(parts, '|'))
end

-- Store one alert and index it, atomically, only if it is new (idempotent by alert_id), and
-- append `alert.created` to the alert event stream (webhooks and the update publisher read it).
-- KEYS: alert body, event stream, then every index sorted set it belongs to (all in {al})
-- ARGV: alert_id, ts_ms, alert json, origin (`worker` or `api`), the stream's approximate cap
-- Returns 1 if stored now, else the body kept since (a replay changes nothing, so an
-- investigator's status on it is never reset, and the caller republishes the current one).
local function alert_put(keys, args)
  local kept = redis.call('GET', keys[1])
  if kept then return kept end
  redis.call('SET', keys[1], args[3])
  for i = 3, #keys do redis.call('ZADD', keys[i], args[2], args[1]) end
  redis.call('XADD', keys[2], 'MAXLEN', '~', args[5], '*',
    'type', 'alert.created', 'alert_id', args[1], 'origin', args[4])
  return 1
end

-- Apply one workflow action to an alert, atomically: check its status, rewrite the status in
-- the body, move the id between status indexes, append a history entry.
-- KEYS: alert body, history list, then one status index per status named in ARGV[9], in that
--       order, then the alert event stream, then the alert → case hash (all in the {al} slot)
-- ARGV: [1] alert_id, [2] action, [3] target status, [4] allowed source statuses
--       (space-separated), [5] by key id, [6] by name, [7] by role, [8] at (RFC 3339),
--       [9] every status (space-separated, aligned with KEYS[3..]), [10] note,
--       [11] the history length the caller judged the move on ('' when it judged none),
--       [12] the event stream's approximate cap, [13] the key prefix of cases,
--       [14] the statuses, least settled first (a case's status is its alerts' least settled)
-- Returns {1, from, n} when applied (n: the move's number in the history, 1 for the first),
-- {0, current} when the action is not allowed, {-1} missing,
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

  local moves = redis.call('RPUSH', keys[2], cjson.encode({
    action = args[2], from = current, to = args[3], at = args[8], note = args[10],
    by = {key_id = args[5], name = args[6], role = args[7]},
  }))
  -- The alert's case counts it in its new status, and may change status itself.
  local case_id = redis.call('HGET', keys[#keys], args[1])
  local record = case_id and (args[13] .. ':c:' .. case_id)
  if record and redis.call('HEXISTS', record, 'status') == 1 then
    redis.call('HINCRBY', record, 'n:' .. current, -1)
    redis.call('HINCRBY', record, 'n:' .. args[3], 1)
    local order = {}
    for status in string.gmatch(args[14], '%S+') do order[#order + 1] = status end
    local was, now = redis.call('HGET', record, 'status'), case_status(record, order)
    if now ~= was then
      local priority = redis.call('HGET', record, 'priority')
      redis.call('ZREM', args[13] .. ':cx:status:' .. was, case_id)
      redis.call('ZADD', args[13] .. ':cx:status:' .. now, priority, case_id)
      redis.call('HSET', record, 'status', now)
    end
  end
  redis.call('XADD', keys[#keys - 1], 'MAXLEN', '~', args[12], '*',
    'type', 'alert.updated', 'alert_id', args[1], 'origin', 'api',
    'action', args[2], 'from', current, 'to', args[3], 'by', args[5], 'move', moves)
  return {1, current, moves}
end

-- Delete one closed alert past retention, with its features, history and index entries, and
-- take it out of its case (a case left without alerts goes with it), atomically and only if
-- it is still closed (an action taken meanwhile keeps it).
-- KEYS: alert body, features, history, the alert → case hash, then every index it belongs to
--       (all in the {al} slot)
-- ARGV: alert_id, closed statuses (space-separated), the key prefix of cases, the statuses,
--       least settled first
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
  for i = 5, #keys do redis.call('ZREM', keys[i], args[1]) end
  redis.call('DEL', keys[1], keys[2], keys[3])

  local case_id = redis.call('HGET', keys[4], args[1])
  if not case_id then return 1 end
  redis.call('HDEL', keys[4], args[1])
  local prefix = args[3]
  local record = prefix .. ':c:' .. case_id
  redis.call('ZREM', record .. ':al', args[1])
  if redis.call('HEXISTS', record, 'status') == 0 then return 1 end
  local was = redis.call('HGET', record, 'status')
  local severity = redis.call('HGET', record, 'severity')
  if redis.call('HINCRBY', record, 'alerts', -1) <= 0 then
    -- Its last alert is gone: the case goes, from every index too.
    redis.call('ZREM', prefix .. ':cx:all', case_id)
    redis.call('ZREM', prefix .. ':cx:status:' .. was, case_id)
    redis.call('ZREM', prefix .. ':cx:severity:' .. severity, case_id)
    local accounts = redis.call('Hkeys', record .. ':ac')
    for _, account in ipairs(accounts) do
      redis.call('ZREM', prefix .. ':cx:account:' .. account, case_id)
    end
    redis.call('DEL', record, record .. ':al', record .. ':ac')
    return 1
  end
  redis.call('HINCRBY', record, 'n:' .. status, -1)
  local order = {}
  for s in string.gmatch(args[4], '%S+') do order[#order + 1] = s end
  local now = case_status(record, order)
  if now ~= was then
    local priority = redis.call('HGET', record, 'priority')
    redis.call('ZREM', prefix .. ':cx:status:' .. was, case_id)
    redis.call('ZADD', prefix .. ':cx:status:' .. now, priority, case_id)
    redis.call('HSET', record, 'status', now)
  end
  return 1
end

-- Read what case grouping needs for a batch of alerts, and a digest of it.
-- KEYS: the alert → case hash (it names the {al} slot every key read lives in)
-- ARGV: [1] the request as JSON: [prefix, alert ids, accounts]
-- Returns {digest, values...} (see case_snapshot).
local function case_read(keys, args)
  local out = case_snapshot(cjson.decode(args[1]))
  table.insert(out, 1, snapshot_digest(out))
  return out
end

-- Apply what case grouping decided for a batch of alerts, if what it read is unchanged.
-- KEYS: the alert → case hash (it names the {al} slot every key written lives in)
-- ARGV: [1] the digest of what grouping read, [2] the read request (JSON, as case_read
--       took it), [3] the changes (JSON list, every value a string), [4] the TTL (ms) of
--       suspect pointers and links, [5] how many links an account keeps per kind,
--       [6] the statuses, least settled first (space-separated)
-- Returns 1 when applied, 0 when something grouping read has changed since (read again).
local function case_write(keys, args)
  local request = cjson.decode(args[2])
  if snapshot_digest(case_snapshot(request)) ~= args[1] then return 0 end
  local prefix = request[1]
  local ttl, kept = args[4], tonumber(args[5])
  local order = {}
  for status in string.gmatch(args[6], '%S+') do order[#order + 1] = status end

  local function rec(case_id) return prefix .. ':c:' .. case_id end
  local function index_all() return prefix .. ':cx:all' end
  local function index(dimension, value) return prefix .. ':cx:' .. dimension .. ':' .. value end

  local function unindex(case_id)
    local old = redis.call('HMGET', rec(case_id), 'status', 'severity')
    redis.call('ZREM', index_all(), case_id)
    if old[1] then redis.call('ZREM', index('status', old[1]), case_id) end
    if old[2] then redis.call('ZREM', index('severity', old[2]), case_id) end
  end

  local function link(account, kind, party, ts, cutoff)
    local key = prefix .. ':lk:' .. kind .. ':' .. account
    redis.call('ZADD', key, 'GT', ts, party)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. cutoff)
    redis.call('ZREMRANGEBYRANK', key, 0, -(kept + 1))
    redis.call('PEXPIRE', key, ttl)
  end

  for _, change in ipairs(cjson.decode(args[3])) do
    local op = change[1]
    if op == 'A' then          -- {A, alert_id, case_id, ts}
      redis.call('HSET', prefix .. ':ac', change[2], change[3])
      redis.call('ZADD', rec(change[3]) .. ':al', change[4], change[2])
    elseif op == 'S' then      -- {S, account, case_id}
      redis.call('SET', prefix .. ':sx:' .. change[2], change[3], 'PX', ttl)
    elseif op == 'L' then      -- {L, payer, payee, ts, cutoff}
      link(change[2], 'o', change[3], change[4], change[5])
      link(change[3], 'i', change[2], change[4], change[5])
    elseif op == 'P' then      -- {P, case_id, account, '1' suspect | '0' party, first_ts}
      local accounts = rec(change[2]) .. ':ac'
      if change[4] == '1' then
        redis.call('HSET', accounts, change[3], '1')
      else
        redis.call('HSETNX', accounts, change[3], '0')
      end
      redis.call('SET', prefix .. ':px:' .. change[3], change[2], 'PX', ttl)
      redis.call('ZADD', index('account', change[3]), 'NX', change[5], change[2])
    elseif op == 'M' then      -- {M, absorbed, root, root's first_ts}
      local absorbed, root = change[2], change[3]
      local alerts = redis.call('ZRANGE', rec(absorbed) .. ':al', 0, -1, 'WITHSCORES')
      for i = 1, #alerts, 2 do
        redis.call('HSET', prefix .. ':ac', alerts[i], root)
        redis.call('ZADD', rec(root) .. ':al', alerts[i + 1], alerts[i])
      end
      local accounts = redis.call('HGETALL', rec(absorbed) .. ':ac')
      for i = 1, #accounts, 2 do
        local account, suspect = accounts[i], accounts[i + 1]
        if suspect == '1' then
          redis.call('HSET', rec(root) .. ':ac', account, '1')
          local pointer = prefix .. ':sx:' .. account
          if redis.call('GET', pointer) == absorbed then
            redis.call('SET', pointer, root, 'KEEPTTL')
          end
        else
          redis.call('HSETNX', rec(root) .. ':ac', account, '0')
        end
        local in_case = prefix .. ':px:' .. account
        if redis.call('GET', in_case) == absorbed then
          redis.call('SET', in_case, root, 'KEEPTTL')
        end
        redis.call('ZREM', index('account', account), absorbed)
        redis.call('ZADD', index('account', account), 'NX', change[4], root)
      end
      unindex(absorbed)
      redis.call('DEL', rec(absorbed), rec(absorbed) .. ':al', rec(absorbed) .. ':ac')
      redis.call('HSET', rec(absorbed), 'merged_into', root)
    elseif op == 'R' then      -- {R, case_id, field, value, ...}: its summary now
      local case_id = change[2]
      unindex(case_id)
      for i = 3, #change, 2 do redis.call('HSET', rec(case_id), change[i], change[i + 1]) end
      local status = case_status(rec(case_id), order)
      redis.call('HSET', rec(case_id), 'status', status)
      local fields = redis.call('HMGET', rec(case_id), 'priority', 'severity')
      redis.call('ZADD', index_all(), fields[1], case_id)
      redis.call('ZADD', index('status', status), fields[1], case_id)
      redis.call('ZADD', index('severity', fields[2]), fields[1], case_id)
    end
  end
  return 1
end

register('alert_put', alert_put)
register('alert_action', alert_action)
register('alert_purge', alert_purge)
register('case_read', case_read, true)
register('case_write', case_write)
