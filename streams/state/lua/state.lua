-- The state functions. `streams/state/functions.py` puts the generated prelude (constants,
-- bands, the packed state) before this text and replaces each `--@bind NAME` with locals
-- named after the keys (K_*) and arguments (A_*) of spec NAME, and each `--@facts NAME` with
-- `local facts = ...`: the locals named after its facts, packed in the spec's order.
--
-- A function computes the facts from the state as it stands plus the transfer's own
-- contribution, before any write, so a dry run (screening, the *_peek functions) and the
-- real one agree exactly. The real one then keeps them in the owner's meta hash (for the
-- dedupe horizon, see spec.Side): a redelivered transfer finds the facts of its first
-- delivery there, in the same HMGET that reads the state, and changes nothing.
-- Every key a function touches is one of its KEYS, all in one slot (Redis Cluster checks
-- them before it runs: a slot being migrated answers TRYAGAIN / ASK instead of half a run).
--
-- Scores and times go to redis.call as integer text (`int`, `band_score`; every one is an
-- integer below 2^53, exact in a Lua number); the packed state is an array read by the
-- positions the prelude names, which Lua indexes far faster than named fields.

-- A packed state this version cannot read stops the account's transfers (dead-lettered with
-- this reason) rather than count them from nothing.
local UNREADABLE = 'packed state unreadable (not written by this version) in '

-- 1 if a member last seen at `last` (or never) is not yet counted from `from` on.
local function newly(last, from) if (not last) or last < from then return 1 end return 0 end
local function amount_of(member) return tonumber(string.sub(member, string.match(member, '.*()|') + 1)) end
-- The transfer id of a transfer entry (band prefix, id, `|`, counterparty, `|`, amount).
local function tid_of(member) return string.match(member, '^.([^|]*)') end
-- A stored profile field as an integer fact, or -1 (unknown) when it is missing or not an
-- integer within `limit` (written by hand or by another version): a bad value must not stop
-- scoring, nor overflow the packed facts.
local WIDE_LIMIT = 1e15 - 1
local function number_or_unknown(text, limit)
  local n = tonumber(text)
  if n and n == math.floor(n) and n >= -limit and n <= limit then return n end
  return -1
end

-- Whether a call must not run yet (spec.chain_link): it is not the first of its attempt on
-- this owner, and the owner does not hold the link of the call before it (refused, or not
-- run yet). A refused call writes nothing; the batch is sent again.
local function out_of_order(link, stored)
  if link == 0 or link % CHAIN_SPAN == 1 then return false end
  return tonumber(stored) ~= link - 1
end
local function chain_refused(owner)
  return redis.error_reply(CHAIN_REFUSED .. ' the call before this one in its batch did not '
                           .. 'write ' .. owner)
end

-- HDEL in slices (Lua's unpack takes at most a few thousand values).
local function hdel(key, fields)
  for i = 1, #fields, 1000 do
    redis.call('HDEL', key, unpack(fields, i, math.min(i + 999, #fields)))
  end
end

-- The earliest event time whose facts a side keeps (spec.Side): the dedupe horizon before
-- its housekeeping day began.
local function facts_floor(st, side) return st[side.day] * DAY - DEDUPE_HORIZON end

-- Members of a band between two times (inclusive, nil: open), counted.
local function count(key, band, low, high)
  local a, b = band_scores(band, low, high)
  return redis.call('ZCOUNT', key, a, b)
end

-- `count`, unless the band's bounds settle it without a call: nothing that recent (0), or
-- every member within the window (its size). `latest` bounds every member's time from above
-- and `oldest` from below (see spec.STATE_FIELDS).
local function recent(key, st, band, low, high)
  local size, latest, oldest = st[band.size], st[band.latest], st[band.oldest]
  if size == 0 or latest < low or (high and oldest > high) then return 0 end
  if oldest >= low and ((not high) or latest <= high) then return size end
  return count(key, band, low, high)
end

-- Sum of the hour buckets (flat hour, amount pairs) of the 24 clock hours ending with `hour`.
local function hour_sum(buckets, hour)
  local total = 0
  for i = 1, #buckets, 2 do
    local h = buckets[i]
    if h >= hour - 23 and h <= hour then total = total + buckets[i + 1] end
  end
  return total
end

-- Add to an hour bucket (hours kept ascending); keep only the hours a 24-hour sum of a recent
-- event can read.
local function bucket_add(buckets, hour, amount)
  local i = #buckets - 1
  while i >= 1 and buckets[i] > hour do i = i - 2 end
  if i >= 1 and buckets[i] == hour then
    buckets[i + 1] = buckets[i + 1] + amount
  else
    table.insert(buckets, i + 2, amount)
    table.insert(buckets, i + 2, hour)
  end
  local keep_from = buckets[#buckets - 1] - (BUCKET_HOURS - 1)
  while buckets[1] < keep_from do
    table.remove(buckets, 1)
    table.remove(buckets, 1)
  end
end

-- Entries to add with one ZADD GT, and the packed state kept in step.
local function stage(adds, st, band, ts, member, known)
  adds[#adds + 1] = band_score(band, ts)
  adds[#adds + 1] = member
  if not known then st[band.size] = st[band.size] + 1 end
  if ts > st[band.latest] then st[band.latest] = ts end
  if st[band.oldest] < 0 or ts < st[band.oldest] then st[band.oldest] = ts end
end

-- After members left a band: an empty band knows no times; the outgoing band learns its
-- oldest time exactly (it decides whether a transfer must look for expired entries), the
-- others keep a lower bound (`floor`: the cut a trim removed everything below).
local function left(key, st, band, floor)
  if st[band.size] <= 0 then
    st[band.size], st[band.oldest], st[band.latest] = 0, -1, -1
  elseif band == BANDS.out then
    local low, high = band_scores(band, nil, nil)
    local first = redis.call('ZRANGEBYSCORE', key, low, high, 'WITHSCORES', 'LIMIT', 0, 1)
    st[band.oldest] = band_ts(band, tonumber(first[2]))
  elseif floor and floor > st[band.oldest] then
    st[band.oldest] = floor
  end
end

-- Meta fields leave with the members they explain: `staged` (this call's meta writes) drops
-- them too, so they are not written at all.
local function unstage(meta_key, fields, staged)
  for _, field in ipairs(fields) do staged[field] = nil end
  if #fields > 0 then hdel(meta_key, fields) end
end

-- Members of a band are dropped (oldest first); identifiers take their raw values (meta
-- fields) along, the side's transfer entries their facts, and outgoing entries their amounts
-- out of the running sum.
local function dropping(meta_key, st, band, members, staged, side)
  if band.identifier or band == side.entries then
    local fields = {}
    for i, m in ipairs(members) do
      if band.identifier then
        fields[i] = IDENTIFIER_FIELD .. string.sub(m, 2)
      else
        fields[i] = side.facts .. tid_of(m)
      end
    end
    unstage(meta_key, fields, staged)
  end
  if band == BANDS.out then
    for _, m in ipairs(members) do st[OUT_SUM] = st[OUT_SUM] - amount_of(m) end
  end
end

-- Keep each band within CAP members, the newest by event time.
local function trim_to_cap(key, meta_key, st, side, staged)
  for _, band in ipairs(side.bands) do
    local excess = st[band.size] - CAP
    if excess > 0 then
      local offset = 0
      for _, lower in ipairs(BAND_LIST) do
        if lower.index < band.index then offset = offset + st[lower.size] end
      end
      local first, last = offset, offset + excess - 1
      if band.earliest then  -- the earliest times are the band's highest scores
        first, last = offset + st[band.size] - excess, offset + st[band.size] - 1
      end
      -- (the side's entries hold facts only while one is recent enough)
      local facts = band == side.entries and st[band.latest] >= facts_floor(st, side)
      if band.identifier or band == BANDS.out or facts then
        local members = redis.call('ZRANGE', key, first, last)
        dropping(meta_key, st, band, members, staged, facts and side or {})
      end
      redis.call('ZREMRANGEBYRANK', key, first, last)
      st[band.size] = CAP
      left(key, st, band, nil)
    end
  end
end

-- Once per event day and side: drop the facts of the transfers the day's advance took past
-- the dedupe horizon (none are kept before the side's first housekeeping), and what the
-- side's windows have left behind (entries older than the retention before the day began),
-- from the bands that hold any.
local function housekeeping(key, meta_key, st, day, side, staged)
  local previous = st[side.day]
  if day <= previous then return end
  st[side.day] = day
  local entries = side.entries
  if previous >= 0 and st[entries.size] > 0 then
    local low, high = previous * DAY - DEDUPE_HORIZON, facts_floor(st, side) - 1
    if st[entries.latest] >= low and st[entries.oldest] <= high then
      local a, b = band_scores(entries, math.max(low, 0), high)
      local fields = {}
      for i, m in ipairs(redis.call('ZRANGEBYSCORE', key, a, b)) do
        fields[i] = side.facts .. tid_of(m)
      end
      unstage(meta_key, fields, staged)
    end
  end
  local cut = day * DAY - RETENTION
  for _, band in ipairs(side.expiring) do
    if st[band.oldest] >= 0 and st[band.oldest] < cut then
      local low, high = band_scores(band, nil, cut - 1)
      -- (the entries' facts went before: the dedupe horizon is within the retention)
      if band.identifier or band == BANDS.out then
        local members = redis.call('ZRANGEBYSCORE', key, low, high)
        dropping(meta_key, st, band, members, staged, {})
      end
      st[band.size] = st[band.size] - redis.call('ZREMRANGEBYSCORE', key, low, high)
      left(key, st, band, cut)
    end
  end
end

-- TTLs: refreshed once per event week for a little more than the state TTL, so an account
-- idle for STATE_TTL keeps its keys; also when this call created the windows again. Both keys
-- always get the same TTL at the same moment: the packed state describes the windows, and
-- one must not outlive the other. `ttl_due` decides (and records the week in the packed
-- state, so it must run before the state is saved); `keep_alive` refreshes, after the meta
-- hash is written (a new account's hash does not exist before).
local function ttl_due(st, ts, created)
  local week = math.floor(ts / WEEK)
  if week > st[TTL_WEEK] then
    st[TTL_WEEK] = week
    return true
  end
  return created
end

local function keep_alive(windows_key, meta_key, due)
  if due then
    redis.call('EXPIRE', windows_key, KEY_TTL)
    redis.call('EXPIRE', meta_key, KEY_TTL)
  end
end

local function total_size(st)
  local n = 0
  for _, band in ipairs(BAND_LIST) do n = n + st[band.size] end
  return n
end

local function payer(keys, args, dry)
  --@bind payer
  local facts_field, link = PAYER_SIDE.facts .. A_tid, tonumber(A_chain)
  local meta = redis.call('HMGET', K_meta, META.state, META.opened_at_ms, META.birth_year,
                          META.is_business, facts_field, META.chain, META.taint)
  if out_of_order(link, meta[6]) then return chain_refused(K_meta) end
  -- Alert propagation: the payer's marks as they stand, on every delivery (the caller counts
  -- only those of transfers before this one, see models.taint).
  local marks = meta[7] or ''
  if meta[5] then  -- a redelivery: the facts of the first delivery
    if link > 0 then redis.call('HSET', K_meta, META.chain, A_chain) end
    return {0, meta[5], marks}
  end
  local ts, amount = tonumber(A_ts), tonumber(A_amount)
  local hour, horizon = math.floor(ts / HOUR), ts - RETENTION
  local t1h, t24h, t7d = ts - W1H, ts - W24H, ts - W7D
  local st, out_buckets, in_buckets = load_state(meta[1])
  if not st then return redis.error_reply(UNREADABLE .. K_meta) end
  local out_member = 'o' .. A_tid .. '|' .. A_payee .. '|' .. A_amount
  local asked = {K_windows, 'p' .. A_payee, 'l' .. A_payee, out_member}
  -- Each identifier present: its position among the asked members (the member follows).
  local pseudonyms, raws, slot = {A_device, A_phone, A_ip}, {A_device_raw, A_phone_raw, A_ip_raw}, {}
  for i = 1, 3 do
    if pseudonyms[i] ~= '' then
      asked[#asked + 1] = IDENTIFIER_BANDS[i].prefix .. pseudonyms[i]
      slot[i] = #asked - 1
    end
  end
  local known = redis.call('ZMSCORE', unpack(asked))
  local first_paid = known[1] and band_ts(BANDS.payees_first, tonumber(known[1]))
  local last_paid = known[2] and band_ts(BANDS.payees_last, tonumber(known[2]))
  local added = 1
  if known[3] then added = 0 end  -- a replay past the dedupe horizon adds nothing
  local first_time_payee = 0
  if (not first_paid) or first_paid > ts then first_time_payee = 1 end

  local out_n_1h = recent(K_windows, st, BANDS.out, t1h, ts) + added
  local out_n_24h = recent(K_windows, st, BANDS.out, t24h, ts) + added
  local payees_1h = recent(K_windows, st, BANDS.payees_last, t1h, nil) + newly(last_paid, t1h)
  local payees_24h = recent(K_windows, st, BANDS.payees_last, t24h, nil) + newly(last_paid, t24h)
  local new_payees_24h = recent(K_windows, st, BANDS.payees_first, t24h, ts) + first_time_payee
  local out_amt_24h = hour_sum(out_buckets, hour) + added * amount
  -- Retained outgoing history, without the entries past retention not yet trimmed.
  local out_n_30d_prior, out_amt_30d_prior = st[BANDS.out.size], st[OUT_SUM]
  if st[BANDS.out.oldest] >= 0 and st[BANDS.out.oldest] < horizon then
    local low, high = band_scores(BANDS.out, nil, horizon - 1)
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', K_windows, low, high)) do
      out_n_30d_prior = out_n_30d_prior - 1
      out_amt_30d_prior = out_amt_30d_prior - amount_of(m)
    end
  end
  local in_n_24h = recent(K_windows, st, BANDS['in'], t24h, ts)
  local in_amt_24h = hour_sum(in_buckets, hour)
  local payers_24h = recent(K_windows, st, BANDS.payers_last, t24h, nil)
  local last_in_ts, latest_in = -1, st[BANDS['in'].latest]
  if latest_in >= horizon then
    if latest_in <= ts then
      last_in_ts = latest_in
    else  -- money arrived after this (late) transfer: the latest before it
      local low, high = band_scores(BANDS['in'], horizon, ts)
      local last = redis.call('ZREVRANGEBYSCORE', K_windows, high, low, 'WITHSCORES',
                              'LIMIT', 0, 1)
      if #last > 0 then last_in_ts = band_ts(BANDS['in'], tonumber(last[2])) end
    end
  end
  local first_seen_ts = ts
  if st[FIRST_SEEN] >= 0 and st[FIRST_SEEN] < ts then first_seen_ts = st[FIRST_SEEN] end
  local opened_at = number_or_unknown(meta[2], WIDE_LIMIT)
  local birth_year = number_or_unknown(meta[3], NARROW_LIMIT)
  local is_business = number_or_unknown(meta[4], NARROW_LIMIT)
  local devices_7d = recent(K_windows, st, BANDS.devices, t7d, nil)
  if slot[1] then
    local seen = known[slot[1]] and band_ts(BANDS.devices, tonumber(known[slot[1]]))
    devices_7d = devices_7d + newly(seen, t7d)
  end
  -- Longer memory (low-and-slow), from the same bands.
  local out_n_7d = recent(K_windows, st, BANDS.out, t7d, ts) + added
  local in_n_7d = recent(K_windows, st, BANDS['in'], t7d, ts)
  local payers_7d = recent(K_windows, st, BANDS.payers_last, t7d, nil)
  --@facts payer
  if dry then return {1, facts, marks} end

  local created = total_size(st) == 0
  local adds, staged = {}, {}  -- staged: the meta fields to write
  if added == 1 then  -- (a replay past the horizon keeps no facts: nothing would drop them)
    staged[facts_field] = facts
    stage(adds, st, BANDS.out, ts, out_member, false)
    st[OUT_SUM] = st[OUT_SUM] + amount
    bucket_add(out_buckets, hour, amount)
  end
  if first_time_payee == 1 then  -- GT on this band keeps the earliest time
    stage(adds, st, BANDS.payees_first, ts, asked[2], first_paid)
  end
  if (not last_paid) or last_paid < ts then
    stage(adds, st, BANDS.payees_last, ts, asked[3], last_paid)
  end
  for i = 1, 3 do
    local at = slot[i]
    if at then
      local band = IDENTIFIER_BANDS[i]
      local last = known[at] and band_ts(band, tonumber(known[at]))
      if (not last) or last < ts then stage(adds, st, band, ts, asked[at + 1], last) end
      -- A raw identifier lives exactly as long as its pseudonym in the window it explains.
      if not last then staged[IDENTIFIER_FIELD .. pseudonyms[i]] = raws[i] end
    end
  end
  if #adds > 0 then redis.call('ZADD', K_windows, 'GT', unpack(adds)) end
  trim_to_cap(K_windows, K_meta, st, PAYER_SIDE, staged)
  housekeeping(K_windows, K_meta, st, math.floor(ts / DAY), PAYER_SIDE, staged)
  if ts < facts_floor(st, PAYER_SIDE) then staged[facts_field] = nil end  -- a late event
  if first_seen_ts < st[FIRST_SEEN] or st[FIRST_SEEN] < 0 then st[FIRST_SEEN] = first_seen_ts end
  local due = ttl_due(st, ts, created)
  local fields = {META.state, save_state(st, out_buckets, in_buckets)}
  for field, value in pairs(staged) do fields[#fields + 1] = field; fields[#fields + 1] = value end
  if link > 0 then fields[#fields + 1] = META.chain; fields[#fields + 1] = A_chain end
  redis.call('HSET', K_meta, unpack(fields))
  keep_alive(K_windows, K_meta, due)
  return {1, facts, marks}
end

local function payee(keys, args, dry)
  --@bind payee
  local facts_field, link = PAYEE_SIDE.facts .. A_tid, tonumber(A_chain)
  local meta = redis.call('HMGET', K_meta, META.state, META.opened_at_ms, META.birth_year,
                          META.is_business, facts_field, META.chain)
  if out_of_order(link, meta[6]) then return chain_refused(K_meta) end
  if meta[5] then  -- a redelivery
    if link > 0 then redis.call('HSET', K_meta, META.chain, A_chain) end
    return meta[5]
  end
  local ts, amount = tonumber(A_ts), tonumber(A_amount)
  local hour, t1h, t24h, t7d = math.floor(ts / HOUR), ts - W1H, ts - W24H, ts - W7D
  local st, out_buckets, in_buckets = load_state(meta[1])
  if not st then return redis.error_reply(UNREADABLE .. K_meta) end
  local in_member = 'i' .. A_tid .. '|' .. A_payer .. '|' .. A_amount
  local first_member, last_member = 'r' .. A_payer, 'q' .. A_payer
  local known = redis.call('ZMSCORE', K_windows, first_member, last_member, in_member)
  local first_paid = known[1] and band_ts(BANDS.payers_first, tonumber(known[1]))
  local last_paid = known[2] and band_ts(BANDS.payers_last, tonumber(known[2]))
  local added = 1
  if known[3] then added = 0 end
  local first_time = 0
  if (not first_paid) or first_paid > ts then first_time = 1 end

  local in_n_1h = recent(K_windows, st, BANDS['in'], t1h, ts) + added
  local in_n_24h = recent(K_windows, st, BANDS['in'], t24h, ts) + added
  local payers_1h = recent(K_windows, st, BANDS.payers_last, t1h, nil) + newly(last_paid, t1h)
  local payers_24h = recent(K_windows, st, BANDS.payers_last, t24h, nil) + newly(last_paid, t24h)
  local new_payers_24h = recent(K_windows, st, BANDS.payers_first, t24h, ts) + first_time
  local in_amt_24h = hour_sum(in_buckets, hour) + added * amount
  local out_amt_24h = hour_sum(out_buckets, hour)
  local first_seen_ts = ts
  if st[FIRST_SEEN] >= 0 and st[FIRST_SEEN] < ts then first_seen_ts = st[FIRST_SEEN] end
  local opened_at = number_or_unknown(meta[2], WIDE_LIMIT)
  local birth_year = number_or_unknown(meta[3], NARROW_LIMIT)
  local is_business = number_or_unknown(meta[4], NARROW_LIMIT)
  -- Longer memory (low-and-slow), from the same bands.
  local in_n_7d = recent(K_windows, st, BANDS['in'], t7d, ts) + added
  local payers_7d = recent(K_windows, st, BANDS.payers_last, t7d, nil) + newly(last_paid, t7d)
  local new_payers_7d = recent(K_windows, st, BANDS.payers_first, t7d, ts) + first_time
  --@facts payee
  if dry then return facts end

  local created = total_size(st) == 0
  local adds, staged = {}, {}
  if added == 1 then
    staged[facts_field] = facts
    stage(adds, st, BANDS['in'], ts, in_member, false)
    bucket_add(in_buckets, hour, amount)
  end
  if first_time == 1 then
    stage(adds, st, BANDS.payers_first, ts, first_member, first_paid)
  end
  if (not last_paid) or last_paid < ts then
    stage(adds, st, BANDS.payers_last, ts, last_member, last_paid)
  end
  if #adds > 0 then redis.call('ZADD', K_windows, 'GT', unpack(adds)) end
  trim_to_cap(K_windows, K_meta, st, PAYEE_SIDE, staged)
  housekeeping(K_windows, K_meta, st, math.floor(ts / DAY), PAYEE_SIDE, staged)
  if ts < facts_floor(st, PAYEE_SIDE) then staged[facts_field] = nil end
  if first_seen_ts < st[FIRST_SEEN] or st[FIRST_SEEN] < 0 then st[FIRST_SEEN] = first_seen_ts end
  local due = ttl_due(st, ts, created)
  local fields = {META.state, save_state(st, out_buckets, in_buckets)}
  if staged[facts_field] then fields[3] = facts_field; fields[4] = facts end
  if link > 0 then fields[#fields + 1] = META.chain; fields[#fields + 1] = A_chain end
  redis.call('HSET', K_meta, unpack(fields))
  keep_alive(K_windows, K_meta, due)
  return facts
end

-- One transfer on a device / phone / IP: distinct payer accounts in 7 days, this one included.
-- The entity's one sorted set holds its accounts (`a` + account, at the last time seen), its
-- marker (`m`: the event week of its last trim and how many accounts it holds), the chain
-- link of the last call that wrote it (`c`, below the accounts' times) and, below all, the
-- facts each transfer got (`f` + transfer id; spec.entity_facts_score).
local function entity(keys, args, dry)
  --@bind entity
  local ts = tonumber(A_ts)
  local account_member = ENTITY_ACCOUNT .. A_account
  local link = tonumber(A_chain)
  local known = redis.call('ZMSCORE', K_accounts, account_member, ENTITY_MARKER,
                           ENTITY_FACTS .. A_tid, ENTITY_CHAIN)
  if out_of_order(link, known[4]) then return chain_refused(K_accounts) end
  if known[3] then  -- a redelivery
    if link > 0 then redis.call('ZADD', K_accounts, A_chain, ENTITY_CHAIN) end
    return (-tonumber(known[3]) - 1) % ENTITY_COUNT_SPAN
  end
  local last = known[1] and tonumber(known[1])
  local marker = tonumber(known[2] or -ENTITY_COUNT_SPAN)
  local trimmed_week = math.floor(marker / ENTITY_COUNT_SPAN)
  local held = marker - trimmed_week * ENTITY_COUNT_SPAN
  local t7d = ts - W7D
  local accounts_7d = 1  -- no account but this one: nothing to count
  if held > 1 or (held == 1 and not last) then
    accounts_7d = redis.call('ZCOUNT', K_accounts, int(t7d), '+inf') + newly(last, t7d)
  end
  --@facts entity
  if dry then return accounts_7d end

  local week = math.floor(ts / WEEK)
  local now_held = held
  if not last then now_held = held + 1 end
  local minute = math.floor(ts / MINUTE)
  local adds = {int(-(minute * ENTITY_COUNT_SPAN + facts) - 1), ENTITY_FACTS .. A_tid}
  if (not last) or last < ts then adds[3] = A_ts; adds[4] = account_member end
  local new_week = week > trimmed_week
  if new_week then trimmed_week = week end
  if now_held ~= held or new_week then
    adds[#adds + 1] = int(trimmed_week * ENTITY_COUNT_SPAN + now_held)
    adds[#adds + 1] = ENTITY_MARKER
  end
  if link > 0 then adds[#adds + 1] = A_chain; adds[#adds + 1] = ENTITY_CHAIN end
  -- No GT: every other score here only grows (each is added only when it does), and the
  -- chain link of a new attempt may be lower than the last one.
  redis.call('ZADD', K_accounts, unpack(adds))
  local kept = now_held
  if kept > CAP then  -- the oldest accounts go: they follow the facts and the marker
    local below = redis.call('ZCOUNT', K_accounts, '-inf', '(' .. ENTITY_TIME_FLOOR)
    redis.call('ZREMRANGEBYRANK', K_accounts, below, below + kept - CAP - 1)
    kept = CAP
  end
  -- Facts older than the dedupe horizon go once per event week, and for a busy entity about
  -- every 64th transfer (chosen by its event time, so the same on any replay). Without a
  -- marker the set was empty: nothing to trim.
  if known[2] and (new_week or ts % 64 == 0) then
    local oldest = math.floor((ts - DEDUPE_HORIZON) / MINUTE)
    redis.call('ZREMRANGEBYSCORE', K_accounts, '(' .. (-(oldest * ENTITY_COUNT_SPAN) - 1), -1)
  end
  if new_week then  -- once per event week: accounts no window counts any more, and the TTL
    if held > 0 then
      local cut = week * WEEK - ENTITY_RETENTION
      kept = kept - redis.call('ZREMRANGEBYSCORE', K_accounts, ENTITY_TIME_FLOOR, cut - 1)
    end
    redis.call('EXPIRE', K_accounts, KEY_TTL)
  end
  if kept ~= now_held then
    redis.call('ZADD', K_accounts, int(trimmed_week * ENTITY_COUNT_SPAN + kept), ENTITY_MARKER)
  end
  return accounts_7d
end

-- An account's windows as of its own latest transfer, for the early-warning risk view:
-- read-only, the same counts and hour sums the payer and payee functions compute.
-- Returns the ACCOUNT_VIEW facts (as_of -1 when the account has no window entry; amounts as
-- decimal text, profile fields as stored, '' when absent), then kind, pseudonym and raw value
-- of each device, phone and IP the account used in the 7 days before as_of.
local function account_view(keys, args)
  --@bind account_view
  local meta = redis.call('HMGET', K_meta, META.state, META.opened_at_ms, META.birth_year,
                          META.is_business)
  -- A state this version cannot read is shown as none: a view never fails on what is stored.
  local st, out_buckets, in_buckets = load_state(meta[1])
  if not st then st, out_buckets, in_buckets = load_state(nil) end
  local opened_at, birth_year, is_business = meta[2] or '', meta[3] or '', meta[4] or ''
  local as_of = math.max(st[BANDS.out.latest], st[BANDS['in'].latest])
  if as_of < 0 then
    return {-1, 0, '0', 0, 0, 0, 0, '0', 0, 0, 0, opened_at, birth_year, is_business}
  end
  local hour, t1h, t24h, t7d = math.floor(as_of / HOUR), as_of - W1H, as_of - W24H, as_of - W7D
  local out_n_24h = recent(K_windows, st, BANDS.out, t24h, as_of)
  local out_amt_24h = string.format('%d', hour_sum(out_buckets, hour))
  local payees_1h = recent(K_windows, st, BANDS.payees_last, t1h, nil)
  local payees_24h = recent(K_windows, st, BANDS.payees_last, t24h, nil)
  local new_payees_24h = recent(K_windows, st, BANDS.payees_first, t24h, as_of)
  local in_n_24h = recent(K_windows, st, BANDS['in'], t24h, as_of)
  local in_amt_24h = string.format('%d', hour_sum(in_buckets, hour))
  local payers_1h = recent(K_windows, st, BANDS.payers_last, t1h, nil)
  local payers_24h = recent(K_windows, st, BANDS.payers_last, t24h, nil)
  local new_payers_24h = recent(K_windows, st, BANDS.payers_first, t24h, as_of)
  as_of = string.format('%d', as_of)
  --@facts account_view
  local view = facts
  for i, band in ipairs(IDENTIFIER_BANDS) do
    if st[band.latest] >= t7d then
      local low, high = band_scores(band, t7d, nil)
      local members = redis.call('ZRANGEBYSCORE', K_windows, low, high)
      if #members > 0 then
        local pseudonyms = {}
        for j, m in ipairs(members) do pseudonyms[j] = string.sub(m, 2) end
        local fields = {}
        for j, pseudonym in ipairs(pseudonyms) do fields[j] = IDENTIFIER_FIELD .. pseudonym end
        local raws = redis.call('HMGET', K_meta, unpack(fields))
        for j, pseudonym in ipairs(pseudonyms) do
          view[#view + 1] = ENTITY_KINDS[i]
          view[#view + 1] = pseudonym
          view[#view + 1] = raws[j] or pseudonym
        end
      end
    end
  end
  return view
end

-- Alert propagation (models.taint): a transfer that alerted marks its payee. The marks are
-- one meta field, `id,ts,amount,partition,offset` entries joined by `;`. A mark already there,
-- or older than the account keeps, changes nothing; the account keeps the TAINT_CAP newest
-- (by time, then id) within TAINT_KEEP of its newest, as models.taint.keep_marks does.
local function mark(keys, args)
  --@bind mark
  local stored = redis.call('HGET', K_meta, META.taint)
  local ts = tonumber(A_ts)
  local marks, newest, known = {}, ts, false
  for entry in string.gmatch(stored or '', '[^;]+') do
    local tid, at = string.match(entry, '^([^,]+),(%-?%d+),%-?%d+,%-?%d+,%-?%d+$')
    if tid then
      at = tonumber(at)
      if tid == A_tid then known = true end
      if at > newest then newest = at end
      marks[#marks + 1] = {at, tid, entry}
    end
  end
  local added = 0
  if (not known) and ts >= newest - TAINT_KEEP then added = 1 end
  --@facts mark
  if added == 0 then return facts end
  marks[#marks + 1] = {ts, A_tid, table.concat({A_tid, A_ts, A_amount, A_partition, A_offset}, ',')}
  table.sort(marks, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  local kept = {}
  for _, m in ipairs(marks) do
    if m[1] >= newest - TAINT_KEEP then kept[#kept + 1] = m[3] end
  end
  while #kept > TAINT_CAP do table.remove(kept, 1) end
  redis.call('HSET', K_meta, META.taint, table.concat(kept, ';'))
  -- (an account's meta hash has its TTL from its transfers; a mark never outlives them)
  if not stored then redis.call('EXPIRE', K_meta, KEY_TTL, 'NX') end
  return facts
end

-- Observation (streams/state/observation.py, `Observation.after`): one segment of a batch's
-- event times, from `first` to `last`. A first segment, or one after a silence longer than
-- OBSERVATION_GAP since the latest time applied, begins observation again; the newest
-- OBSERVATION_STARTS starts are kept. Stored as `latest,start,...`; a lone number is a start
-- recorded before restarts existed (latest unknown: no restart until it is known).
local function observe(keys, args)
  --@bind observe
  local stored = redis.call('GET', K_observation)
  local starts, latest = {}, nil
  for part in string.gmatch(stored or '', '[^,]+') do starts[#starts + 1] = tonumber(part) end
  if #starts > 1 then latest = table.remove(starts, 1) end
  local first, last = tonumber(A_first), tonumber(A_last)
  if #starts == 0 or (latest and first > latest + OBSERVATION_GAP) then
    starts[#starts + 1] = first
  end
  while #starts > OBSERVATION_STARTS do table.remove(starts, 1) end
  if (not latest) or last > latest then latest = last end
  local parts = {int(latest)}
  for _, start in ipairs(starts) do parts[#parts + 1] = int(start) end
  local observation = table.concat(parts, ',')
  --@facts observe
  if observation ~= stored then redis.call('SET', K_observation, observation) end
  return facts
end

register('payer', function(keys, args) return payer(keys, args, false) end)
register('payer_peek', function(keys, args) return payer(keys, args, true) end, true)
register('payee', function(keys, args) return payee(keys, args, false) end)
register('payee_peek', function(keys, args) return payee(keys, args, true) end, true)
register('entity', function(keys, args) return entity(keys, args, false) end)
register('entity_peek', function(keys, args) return entity(keys, args, true) end, true)
register('account_view', account_view, true)
register('mark', mark)
register('observe', observe)
