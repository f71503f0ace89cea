-- A case's status from how many of its alerts are in each status (fields `n:<status>`): the
-- first of `order` (least settled first) that any alert has; `dismissed` when none.
local function case_status(record, order)
  for _, status in ipairs(order) do
    local n = tonumber(redis.call('HGET', record, 'n:' .. status) or '0')
    if n > 0 then return status end
  end
  return 'dismissed'
end
