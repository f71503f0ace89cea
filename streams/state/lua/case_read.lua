-- Read what case grouping needs for a batch of alerts, and a digest of it.
-- KEYS: the alert → case hash (it names the {al} slot every key read lives in)
-- ARGV: [1] the request as JSON: [prefix, alert ids, accounts]
-- Returns {digest, values...} (see case_snapshot.lua).
__CASE_SNAPSHOT__
local out = case_snapshot(cjson.decode(ARGV[1]))
table.insert(out, 1, snapshot_digest(out))
return out
