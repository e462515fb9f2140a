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

/**
 * A batch of writes, applied in order.
 * KEYS: 1 unfinished zset, 2 completed zset, 3 first-seen counter, 4 stats
 * hash, then per write: the transaction's records list, its decision key.
 * ARGV: per write: mode (`d` decide, `a` append), tx id, payload (decision
 * JSON, or `<op id>|<json>` for an append), record type, `at`.
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
local out = {}
local n = #ARGV / 5
local records, bytes, fresh = 0, 0, {}
for i = 0, n - 1 do
  local mode, tx, payload, rtype, at = ARGV[i*5+1], ARGV[i*5+2], ARGV[i*5+3], ARGV[i*5+4], ARGV[i*5+5]
  local list, dec = KEYS[5 + i*2], KEYS[6 + i*2]
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
    elseif len == 1 then
      -- A transaction's first record (a completed one always has its complete
      -- record, until compaction removes both): it is unfinished from now on.
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
