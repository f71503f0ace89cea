-- Apply what case grouping decided for a batch of alerts, if what it read is unchanged.
-- KEYS: the alert → case hash (it names the {al} slot every key written lives in)
-- ARGV: [1] the digest of what grouping read, [2] the read request (JSON, as case_read.lua
--       took it), [3] the changes (JSON list, every value a string), [4] the TTL (ms) of
--       suspect pointers and links, [5] how many links an account keeps per kind,
--       [6] the statuses, least settled first (space-separated)
-- Returns 1 when applied, 0 when something grouping read has changed since (read again).
__CASE_SNAPSHOT__
__CASE_STATUS__
local request = cjson.decode(ARGV[2])
if snapshot_digest(case_snapshot(request)) ~= ARGV[1] then return 0 end
local prefix = request[1]
local ttl, kept = ARGV[4], tonumber(ARGV[5])
local order = {}
for status in string.gmatch(ARGV[6], '%S+') do order[#order + 1] = status end

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

for _, change in ipairs(cjson.decode(ARGV[3])) do
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
