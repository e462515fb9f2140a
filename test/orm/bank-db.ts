import type { PgCluster } from '../../harness/pg-cluster';
import { accountsTableSql } from '../../harness/bank';

/** Accounts 1..ACCOUNTS of each bank database start with INITIAL. */
export const ACCOUNTS = 4;
export const INITIAL = 100;

/**
 * A bank database of the ORM suites: the recipes' tables, `accounts` (a
 * balance never below 0) and `entries` (one row per booking, with its
 * transaction), as recipes/schema.prisma and the Drizzle and Kysely recipes
 * describe them.
 */
export async function createBank(cluster: PgCluster, db: string): Promise<void> {
  await cluster.createDatabase(db);
  await cluster.withClient(async (c) => {
    await c.query(accountsTableSql({ balance: 'int', nonNegative: true }));
    await c.query('create table entries (id serial primary key, account_id int not null references accounts (id), tx_id uuid not null, delta int not null)');
    await c.query('insert into accounts select g, $1 from generate_series(1, $2) g', [INITIAL, ACCOUNTS]);
  }, db);
}

export interface BankState {
  /** Balances of accounts 1..ACCOUNTS, in order. */
  balances: number[];
  /** `account:delta` of each entry booked by the transaction asked for. */
  entries: string[];
}

export async function bankState(cluster: PgCluster, db: string, txId: string): Promise<BankState> {
  return cluster.withClient(async (c) => {
    const entries = await c.query<{ e: string }>(`select account_id || ':' || delta as e from entries where tx_id = $1 order by id`, [txId]);
    return { balances: await balances(cluster, db), entries: entries.rows.map((r) => r.e) };
  }, db);
}

/** Balances of accounts 1..ACCOUNTS, in order. */
export async function balances(cluster: PgCluster, db: string): Promise<number[]> {
  const r = await cluster.withClient((c) => c.query<{ balance: number }>('select balance from accounts order by id'), db);
  return r.rows.map((row) => row.balance);
}

/** The balances after `deltas` (account → delta) were applied to a fresh bank, or to `before`. */
export function balancesAfter(deltas: Record<number, number>, before: number[] = Array<number>(ACCOUNTS).fill(INITIAL)): number[] {
  return before.map((b, i) => b + (deltas[i + 1] ?? 0));
}
