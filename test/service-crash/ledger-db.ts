import type { Pool } from 'pg';
import type { PgCluster } from '../../harness/pg-cluster';
import { accountsTableSql } from '../../harness/bank';

/** The bank of the service tests (ledger-service.ts works on it): accounts per ledger and their starting balance. */
export const ACCOUNTS = 200;
export const INITIAL = 1_000;

/**
 * A ledger database: `accounts`, and a `transfers` row per transfer whose
 * deferred unique check is checked at PREPARE — a transfer that inserts
 * `taken` votes no after its work succeeded.
 */
export async function createLedger(cluster: PgCluster, db: string): Promise<void> {
  await cluster.createDatabase(db);
  await cluster.withClient(async (c) => {
    await c.query(accountsTableSql({ balance: 'bigint', nonNegative: true }));
    await c.query('insert into accounts select g, $1 from generate_series(1, $2) g', [INITIAL, ACCOUNTS]);
    await c.query('create table transfers (id text, constraint transfers_id unique (id) deferrable initially deferred)');
    await c.query(`insert into transfers values ('taken')`);
  }, db);
}

/** The money on a ledger and the transfers it holds. */
export async function ledgerState(pool: Pool): Promise<{ total: number; ids: Set<string> }> {
  const total = await pool.query<{ total: string }>('select sum(balance)::text as total from accounts');
  const ids = await pool.query<{ id: string }>(`select id from transfers where id <> 'taken'`);
  return { total: Number(total.rows[0].total), ids: new Set(ids.rows.map((r) => r.id)) };
}
