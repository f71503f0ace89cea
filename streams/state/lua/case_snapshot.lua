-- What case grouping reads for a batch of alerts (shared by case_read.lua and
-- case_write.lua, which reads it again to check nothing changed since). Every key lives in the
-- {al} slot; names are built from the prefix in ARGV.
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
