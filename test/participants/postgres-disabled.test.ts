import { Client, Pool } from 'pg';
import { TwopcError } from '../../coordinator/engine/ports/protocol';
import { PostgresParticipant } from '../../participant-sdk/src/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';

async function startError(pool: Pool, name: string): Promise<TwopcError> {
  const participant = new PostgresParticipant({ name, pool });
  try {
    const error = await participant.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TwopcError);
    return error as TwopcError;
  } finally {
    await participant.close();
  }
}

function expectHelpfulMessage(error: TwopcError, participant: string, database: string): void {
  expect(error.code).toBe('prepared-transactions-disabled');
  expect(error.details).toMatchObject({ participant, database });
  expect(error.message).toContain(`participant "${participant}"`);
  expect(error.message).toContain(`database "${database}"`);
  expect(error.message).toMatch(/max_prepared_transactions is 0/);
  expect(error.message).toMatch(/postgresql\.conf/);
  expect(error.message).toMatch(/max_connections/);
  expect(error.message).toMatch(/restart PostgreSQL/);
}

describe('PostgresParticipant.start with prepared transactions disabled', () => {
  it('fails with a message that says what, where, and how to fix it (throwaway cluster)', async () => {
    const cluster = await PgCluster.start({ name: 'disabled', maxPreparedTransactions: 0 });
    const pool = new Pool({ ...cluster.connectionConfig(), max: 2 });
    try {
      const error = await startError(pool, 'ledger');
      expectHelpfulMessage(error, 'ledger', 'postgres');
      // It fails before migrating: nothing was created.
      const tables = await pool.query("select 1 from pg_tables where tablename like 'twopc_%'");
      expect(tables.rowCount).toBe(0);
    } finally {
      await pool.end();
      await cluster.destroy();
    }
  });

  it("fails the same way on this machine's own server at 127.0.0.1:5432, when there is one", async () => {
    const config = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 };
    const probe = new Client(config);
    probe.on('error', () => undefined);
    let setting: string | undefined;
    try {
      await probe.connect();
      setting = (await probe.query<{ max_prepared_transactions: string }>('show max_prepared_transactions')).rows[0].max_prepared_transactions;
    } catch (e) {
      console.log(`skipped: no PostgreSQL reachable at 127.0.0.1:5432 as postgres (${(e as Error).message})`);
    } finally {
      await probe.end().catch(() => undefined);
    }
    // Only where the server has them disabled: start() on an enabled server would create tables there.
    if (setting !== '0') {
      if (setting !== undefined) console.log(`skipped: 127.0.0.1:5432 has max_prepared_transactions = ${setting}`);
      return;
    }
    const pool = new Pool({ ...config, max: 1 });
    try {
      expectHelpfulMessage(await startError(pool, 'local'), 'local', 'postgres');
    } finally {
      await pool.end();
    }
  });
});
