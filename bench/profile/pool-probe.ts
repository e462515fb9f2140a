import type { Pool, PoolClient } from 'pg';
import type { Tally } from './tally';

type AnyFn = (...args: unknown[]) => unknown;

/**
 * Statement kind for the profile: the first words with literals blanked, so
 * `commit prepared 'twopc_…_1'` and `commit prepared 'raw_7'` count together.
 */
export function statementKind(query: unknown): string {
  const text = typeof query === 'string' ? query : typeof query === 'object' && query !== null && 'text' in query ? String((query as { text: unknown }).text) : '(submittable)';
  const words = text.toLowerCase().replace(/'[^']*'/g, '?').replace(/[(),;]/g, ' ').trim().split(/\s+/);
  return `sql: ${words.slice(0, 3).join(' ')}`;
}

/**
 * Wraps `fn` so each call's duration is tallied under `kind(args)`, whether the
 * caller used a callback (pg-pool's own `pool.query` does) or a promise.
 */
function timed(fn: AnyFn, self: unknown, tally: Tally, kind: (args: unknown[]) => string): AnyFn {
  return (...args: unknown[]) => {
    const k = kind(args);
    const started = performance.now();
    const done = () => tally.add(k, performance.now() - started);
    const last = args.length - 1;
    if (last >= 0 && typeof args[last] === 'function') {
      const callback = args[last] as AnyFn;
      args[last] = (...cbArgs: unknown[]) => {
        done();
        return callback(...cbArgs);
      };
      return fn.apply(self, args);
    }
    const result = fn.apply(self, args);
    if (result instanceof Promise) result.then(done, done);
    return result;
  };
}

/**
 * Counts and times every statement sent and every pool checkout on `pool`, by
 * patching the pool and each client it creates. Must be called before the pool
 * hands out its first client: clients created earlier are not seen.
 */
export function probePool(pool: Pool, tally: Tally, ledger: string): void {
  const patchable = pool as unknown as { connect: AnyFn };
  patchable.connect = timed(patchable.connect, pool, tally, () => `pool: checkout (${ledger})`);
  pool.on('connect', (client: PoolClient) => {
    const c = client as unknown as { query: AnyFn };
    c.query = timed(c.query, client, tally, (args) => statementKind(args[0]));
  });
}
