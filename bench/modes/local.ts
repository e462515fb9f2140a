import type { Pool } from 'pg';
import type { BenchMode } from '../bench-mode';
import { UPDATE_BALANCE } from '../transfer-plan';

/** BEGIN / UPDATE / COMMIT on one database. */
async function commitLocally(pool: Pool, account: number, delta: number): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query(UPDATE_BALANCE, [delta, account]);
    await client.query('commit');
    client.release();
  } catch (e) {
    // The connection may be inside a failed transaction: drop it instead of pooling it.
    client.release(true);
    throw e;
  }
}

/**
 * Baseline, not atomic: two independent local commits, ledger_a then
 * ledger_b. A crash between them leaves the transfer half applied; this is
 * what a service gets without any distributed transaction.
 */
export const localMode: BenchMode = {
  name: 'local',
  summary: 'two independent local commits (BEGIN/UPDATE/COMMIT on ledger_a, then on ledger_b); not atomic',
  async setup(ctx) {
    const a = ctx.pool('ledger_a');
    const b = ctx.pool('ledger_b');
    return {
      async transfer(t) {
        await commitLocally(a, t.accountA, t.delta);
        await commitLocally(b, t.accountB, -t.delta);
      },
      async close() {},
    };
  },
};
