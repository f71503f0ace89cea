-- An account's windows as of its own latest transfer, for the early-warning risk view:
-- read-only, the same counts and hour-bucket sums the payer and payee scripts compute.
-- KEYS: out, in, meta, devices, phones, ips, identifiers, out_amount, payees_last, payees,
--       in_amount, payers_last, payers (one hash slot)
-- Returns {as_of|-1, out_n, out_amount, payees_1h, payees_24h, new_payees, in_n, in_amount,
--          payers_1h, payers_24h, new_payers, opened_at|'', birth_year|'', is_business|'',
--          then kind, pseudonym, raw value for each device, phone and IP used in 7 days}.
__PRELUDE__
local W1H, W24H, W7D = __W1H__, __W24H__, __W7D__
local meta = redis.call('HMGET', KEYS[3], 'oa', 'by', 'ib')
local profile = {meta[1] or '', meta[2] or '', meta[3] or ''}
local as_of = -1
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  local last = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
  if #last > 0 and tonumber(last[2]) > as_of then as_of = tonumber(last[2]) end
end
if as_of < 0 then
  return {-1, 0, '0', 0, 0, 0, 0, '0', 0, 0, 0, profile[1], profile[2], profile[3]}
end
local sts = s(as_of)
local day, hour_ago, week = s(as_of - W24H), s(as_of - W1H), s(as_of - W7D)
local hour = math.floor(as_of / 3600000)
local view = {
  sts,
  redis.call('ZCOUNT', KEYS[1], day, sts), s(hour_sum(KEYS[8], hour)),
  redis.call('ZCOUNT', KEYS[9], hour_ago, '+inf'), redis.call('ZCOUNT', KEYS[9], day, '+inf'),
  redis.call('ZCOUNT', KEYS[10], day, sts),
  redis.call('ZCOUNT', KEYS[2], day, sts), s(hour_sum(KEYS[11], hour)),
  redis.call('ZCOUNT', KEYS[12], hour_ago, '+inf'), redis.call('ZCOUNT', KEYS[12], day, '+inf'),
  redis.call('ZCOUNT', KEYS[13], day, sts),
  profile[1], profile[2], profile[3],
}
for i, kind in ipairs({'device', 'phone', 'ip'}) do
  for _, pseudonym in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3 + i], week, '+inf')) do
    local raw = redis.call('HGET', KEYS[7], pseudonym)
    view[#view + 1] = kind
    view[#view + 1] = pseudonym
    view[#view + 1] = raw or pseudonym
  end
end
return view
