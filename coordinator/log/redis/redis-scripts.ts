import { createHash } from 'node:crypto';
import type Redis from 'ioredis';

/** A Lua script and its SHA-1, as EVALSHA names it. */
export interface LuaScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

function script(name: string, lua: string): LuaScript {
  return Object.freeze({ name, lua, sha: createHash('sha1').update(lua).digest('hex') });
}

// Every script runs atomically (Redis runs one at a time), and with
// appendfsync always its writes are in the AOF, fsynced, before any client
// is answered — the group commit is one script call carrying many writes:
// one AOF write and one fsync for the whole batch.

/** The error a batch under a lease that was taken over fails with (see APPLY_BATCH). */
export const FENCED_REPLY = 'TWOPC_FENCED';

// The server's clock in ms, for lease expiry (scripts replicate their effects, so TIME is allowed before writes).
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * A batch of writes, applied in order.
 * KEYS: 1 unfinished zset, 2 completed zset, 3 first-seen counter, 4 stats
 * hash, 5 the writer's lease hash (or any key when it has none), then per
 * write: the transaction's records list, its decision key.
 * ARGV: 1 the writer's fencing token ('' when it has no lease), then per
 * write: mode (`d` decide, `a` append), tx id, payload (decision JSON, or
 * `<op id>|<json>` for an append), record type, `at`.
 * A writer whose lease was taken over writes nothing: the script fails with
 * FENCED_REPLY (atomically with the takeover, which is a script too).
 * Returns per write: the winning decision JSON when another decision was
 * there first, '' when this write's own decision won (the caller has it: no
 * need to send it back) and for appends.
 *
 * Both kinds are compare-and-set, so running a batch twice (ioredis resends
 * unanswered commands after a reconnect; the store retries after errors) is
 * the same as running it once: a decision finds the winner already set and
 * returns it; an append finds its own entry (op ids are unique) and is skipped.
 */
export const APPLY_BATCH = script(
  'apply-batch',
  `
if ARGV[1] ~= '' then
  local lease = redis.call('HMGET', KEYS[5], 'name', 'takenOverBy')
  if not lease[1] or lease[2] then
    return redis.error_reply('${FENCED_REPLY} lease ' .. ARGV[1] .. ' was taken over')
  end
end
local out = {}
local n = (#ARGV - 1) / 5
local records, bytes, fresh = 0, 0, {}
for i = 0, n - 1 do
  local mode, tx, payload, rtype, at = ARGV[i*5+2], ARGV[i*5+3], ARGV[i*5+4], ARGV[i*5+5], ARGV[i*5+6]
  local list, dec = KEYS[6 + i*2], KEYS[7 + i*2]
  local entry
  if mode == 'd' then
    if redis.call('SET', dec, payload, 'NX') then
      entry = 'd'
      out[i+1] = ''
    else
      out[i+1] = redis.call('GET', dec)
    end
  else
    if not redis.call('LPOS', list, payload) then entry = payload end
    out[i+1] = ''
  end
  if entry then
    local len = redis.call('RPUSH', list, entry)
    records = records + 1
    bytes = bytes + #payload
    if rtype == 'complete' then
      redis.call('ZREM', KEYS[1], tx)
      redis.call('ZADD', KEYS[2], 'NX', at, tx)
    elseif len == 1 and rtype ~= 'action' then
      -- A transaction's first record (a completed one always has its complete
      -- record, until compaction removes both): it is unfinished from now on.
      -- An operator's action record is appended only to an unfinished one: first,
      -- its transaction was forgotten meanwhile, and it makes none exist.
      fresh[#fresh+1] = tx
    end
  end
end
if #fresh > 0 then
  local last = redis.call('INCRBY', KEYS[3], #fresh)
  local zadd = {}
  for j, tx in ipairs(fresh) do
    zadd[#zadd+1] = last - #fresh + j
    zadd[#zadd+1] = tx
  end
  -- In slices: Lua's unpack has a stack limit of a few thousand values.
  for k = 1, #zadd, 1000 do
    redis.call('ZADD', KEYS[1], unpack(zadd, k, math.min(k + 999, #zadd)))
  end
end
if records > 0 then
  redis.call('HINCRBY', KEYS[4], 'records', records)
  redis.call('HINCRBY', KEYS[4], 'bytes', bytes)
end
return out
`,
);

/**
 * Reads transactions whole, atomically (never a list without its decision).
 * KEYS: per transaction: records list, decision key.
 * Returns per transaction: { decision JSON or '', entry, entry, … }.
 */
export const READ_TRANSACTIONS = script(
  'read-transactions',
  `
local out = {}
for i = 1, #KEYS, 2 do
  local t = redis.call('LRANGE', KEYS[i], 0, -1)
  table.insert(t, 1, redis.call('GET', KEYS[i+1]) or '')
  out[#out+1] = t
end
return out
`,
);

/**
 * Forgets completed transactions, each only if it is still completed at or
 * before the cutoff when the script runs (another coordinator may have
 * compacted it, or a late record arrived).
 * KEYS: 1 unfinished, 2 completed, 3 stats, then per transaction: records
 * list, decision key. ARGV: 1 cutoff, then the transaction ids.
 * Returns how many were forgotten.
 */
export const FORGET_COMPLETED = script(
  'forget-completed',
  `
local forgotten = 0
local cutoff = tonumber(ARGV[1])
for i = 2, #ARGV do
  local tx = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[2], tx)
  if score and tonumber(score) <= cutoff then
    local list, dec = KEYS[2*i], KEYS[2*i + 1]
    local entries = redis.call('LRANGE', list, 0, -1)
    local bytes = 0
    for _, e in ipairs(entries) do
      if e == 'd' then bytes = bytes + redis.call('STRLEN', dec) else bytes = bytes + #e end
    end
    redis.call('DEL', list, dec)
    redis.call('ZREM', KEYS[2], tx)
    redis.call('ZREM', KEYS[1], tx)
    redis.call('HINCRBY', KEYS[3], 'records', -#entries)
    redis.call('HINCRBY', KEYS[3], 'bytes', -bytes)
    forgotten = forgotten + 1
  end
end
return forgotten
`,
);

/**
 * A new lease. KEYS: 1 token counter, 2 lease set, 3 the lease hash prefix
 * (`…:lease:`, the token is appended). ARGV: name, url, lease ms.
 * Returns { token, expiresAt }.
 */
export const REGISTER_LEASE = script(
  'register-lease',
  `
${NOW}
local token = redis.call('INCR', KEYS[1])
local expires = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[3] .. token, 'name', ARGV[1], 'url', ARGV[2], 'expiresAt', expires)
redis.call('ZADD', KEYS[2], token, token)
return { token, tostring(expires) }
`,
);

/** KEYS: 1 the lease hash. ARGV: lease ms. Returns 1 when extended, 0 when taken over (or gone). */
export const RENEW_LEASE = script(
  'renew-lease',
  `
${NOW}
local lease = redis.call('HMGET', KEYS[1], 'name', 'takenOverBy')
if not lease[1] or lease[2] then return 0 end
redis.call('HSET', KEYS[1], 'expiresAt', now + tonumber(ARGV[1]))
return 1
`,
);

/**
 * KEYS: 1 the lease hash to take over. ARGV: 1 its token, 2 the taker's
 * token, 3 '1' to take it even if live. Returns 1 when this call took it.
 */
export const TAKE_OVER_LEASE = script(
  'take-over-lease',
  `
${NOW}
local lease = redis.call('HMGET', KEYS[1], 'name', 'takenOverBy', 'expiresAt')
if not lease[1] or lease[2] or ARGV[1] == ARGV[2] then return 0 end
if ARGV[3] ~= '1' and tonumber(lease[3]) >= now then return 0 end
redis.call('HSET', KEYS[1], 'takenOverBy', ARGV[2], 'takenOverAt', now)
return 1
`,
);

/** KEYS: 1 the lease hash. Expires a lease not taken over now. */
export const RELEASE_LEASE = script(
  'release-lease',
  `
${NOW}
local lease = redis.call('HMGET', KEYS[1], 'name', 'takenOverBy')
if not lease[1] or lease[2] then return 0 end
redis.call('HSET', KEYS[1], 'expiresAt', now - 1)
return 1
`,
);

/**
 * Every lease and the clock, atomically. KEYS: 1 lease set, 2 the lease hash
 * prefix. Returns { now, { token, name, url, expiresAt, takenOverBy or '' }, … }.
 */
export const VIEW_LEASES = script(
  'view-leases',
  `
${NOW}
local out = { tostring(now) }
for _, token in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local l = redis.call('HMGET', KEYS[2] .. token, 'name', 'url', 'expiresAt', 'takenOverBy')
  if l[1] then out[#out+1] = { token, l[1], l[2], l[3], l[4] or '' } end
end
return out
`,
);

/**
 * Forgets leases taken over more than ARGV[1] ms ago that no other lease
 * points to and that own no unfinished transaction. KEYS: 1 lease set, 2 the
 * lease hash prefix, 3 unfinished zset, 4 the records list prefix.
 * Owners are read from each unfinished transaction's begin record.
 */
export const PRUNE_LEASES = script(
  'prune-leases',
  `
${NOW}
local owners = {}
for _, tx in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local first = redis.call('LINDEX', KEYS[4] .. tx, 0)
  if first then
    local owner = string.match(first, '"type":"begin".*"owner":(%d+)')
    if owner then owners[owner] = true end
  end
end
local tokens = redis.call('ZRANGE', KEYS[1], 0, -1)
local pointed = {}
for _, token in ipairs(tokens) do
  local by = redis.call('HGET', KEYS[2] .. token, 'takenOverBy')
  if by then pointed[by] = true end
end
local pruned = 0
for _, token in ipairs(tokens) do
  local at = redis.call('HGET', KEYS[2] .. token, 'takenOverAt')
  if at and tonumber(at) < now - tonumber(ARGV[1]) and not owners[token] and not pointed[token] then
    redis.call('DEL', KEYS[2] .. token)
    redis.call('ZREM', KEYS[1], token)
    pruned = pruned + 1
  end
end
return pruned
`,
);

function isNoScript(e: unknown): boolean {
  return e instanceof Error && e.message.startsWith('NOSCRIPT');
}

/**
 * Runs a script by SHA, loading it with EVAL when the server does not have it
 * (a restarted server has an empty script cache).
 */
export async function runScript(redis: Redis, s: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
  try {
    return await redis.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (e) {
    if (!isNoScript(e)) throw e;
    return redis.eval(s.lua, keys.length, ...keys, ...args);
  }
}
