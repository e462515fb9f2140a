import { Client } from 'pg';
import { BALANCES, MOVED_TX_IDS, PREPARED_HERE } from './account-sql';
import type { Bank } from './transfer-plan';

/** One bank's database after the run, read directly (not through its service). */
export interface BankState {
  bank: Bank;
  balances: Array<{ account: number; balance: number }>;
  total: number;
  /** Transactions that left a movement here (committed ones: nothing else is visible). */
  txIds: Set<string>;
  /** GIDs of prepared transactions still in this database. */
  prepared: string[];
}

export async function readBank(bank: Bank, connectionString: string): Promise<BankState> {
  const client = new Client({ connectionString });
  await client.connect();
  try {
    const balances = (await client.query<{ id: number; balance: string }>(BALANCES)).rows.map((r) => ({ account: r.id, balance: Number(r.balance) }));
    const txIds = new Set((await client.query<{ tx_id: string }>(MOVED_TX_IDS)).rows.map((r) => r.tx_id));
    const prepared = (await client.query<{ gid: string }>(PREPARED_HERE)).rows.map((r) => r.gid);
    return { bank, balances, total: balances.reduce((sum, b) => sum + b.balance, 0), txIds, prepared };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Waits until no prepared transaction is left in any of the databases: a
 * commit answered 202 (decided, phase 2 still retrying) finishes a little
 * later. Gives up after `timeoutMs`; the check then reports what is left.
 */
export async function waitForNoPrepared(connectionStrings: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await Promise.all(connectionStrings.map((cs) => readPrepared(cs)));
    if (states.every((gids) => gids.length === 0) || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function readPrepared(connectionString: string): Promise<string[]> {
  const client = new Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<{ gid: string }>(PREPARED_HERE)).rows.map((r) => r.gid);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The demo's invariants, checked once everything is quiet. */
export interface BankCheck {
  total: number;
  expectedTotal: number;
  /** Money conserved: the sum over both banks is what they opened with. */
  conserved: boolean;
  /** Transactions whose movement is in one bank only (a transfer half applied). */
  halfApplied: string[];
  /** Commits acknowledged to the client but not visible in both banks. */
  lostCommits: string[];
  /** Transfers reported aborted to the client but visible somewhere. */
  visibleAborts: string[];
  /** Prepared transactions left in either database. */
  prepared: string[];
  /** Transfers that failed unexpectedly (neither committed nor aborted as planned). */
  failures: number;
  ok: boolean;
}

/** Checks the final states against what the client was told. */
export function checkBanks(states: BankState[], expectedTotal: number, told: { committed: string[]; aborted: string[]; failures: number }): BankCheck {
  const total = states.reduce((sum, s) => sum + s.total, 0);
  const inAll = (id: string) => states.every((s) => s.txIds.has(id));
  const inAny = (id: string) => states.some((s) => s.txIds.has(id));
  const everyId = new Set(states.flatMap((s) => [...s.txIds]));
  const halfApplied = [...everyId].filter((id) => !inAll(id));
  const lostCommits = told.committed.filter((id) => !inAll(id));
  const visibleAborts = told.aborted.filter(inAny);
  const prepared = states.flatMap((s) => s.prepared.map((gid) => `${s.bank}:${gid}`));
  const conserved = total === expectedTotal;
  const ok = conserved && halfApplied.length === 0 && lostCommits.length === 0 && visibleAborts.length === 0 && prepared.length === 0 && told.failures === 0;
  return { total, expectedTotal, conserved, halfApplied, lostCommits, visibleAborts, prepared, failures: told.failures, ok };
}
