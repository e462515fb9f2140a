import type { Pool } from 'pg';
import type { Coordinator } from '../coordinator/in-process/coordinator';

export interface AccountsTable {
  /** `int` comes back from pg as a number; `bigint` as a string (tests compare balances accordingly). */
  balance: 'int' | 'bigint';
  /** A CHECK that the balance never goes negative (an overdraft fails in the database). */
  nonNegative?: boolean;
  ifNotExists?: boolean;
}

/**
 * The `accounts` table of every test, bench and chaos bank:
 * `create table accounts (id int primary key, balance <type> not null [check (balance >= 0)])`.
 *
 * @example
 * await pool.query(accountsTableSql({ balance: 'int' }));
 */
export function accountsTableSql(o: AccountsTable): string {
  const check = o.nonNegative ? ' check (balance >= 0)' : '';
  return `create table ${o.ifNotExists ? 'if not exists ' : ''}accounts (id int primary key, balance ${o.balance} not null${check})`;
}

/** Bank fixture: the same schema in every ledger database; `transfers` records which transfer touched it. */
export const BANK_SCHEMA = `
  ${accountsTableSql({ balance: 'bigint', nonNegative: true, ifNotExists: true })};
  create table if not exists transfers (id text primary key, account int not null, delta bigint not null);
`;

export const INITIAL_BALANCE = 1_000;

/** Transfers within one ledger have ids starting with this, and their debit row's id ends with DEBIT_SUFFIX. */
export const SINGLE_LEDGER_PREFIX = 's';
const DEBIT_SUFFIX = '/debit';

export async function setupBank(pool: Pool, accounts: number): Promise<void> {
  await pool.query(BANK_SCHEMA);
  await pool.query('truncate accounts, transfers');
  await pool.query('insert into accounts (id, balance) select g, $1 from generate_series(1, $2) g', [INITIAL_BALANCE, accounts]);
}

/** How a transfer is made to fail, for tests. */
export type Sabotage = 'none' | 'overdraft' | 'swallowed-error' | 'kill-connection';

export interface Transfer {
  id: string;
  from: { db: string; account: number };
  to: { db: string; account: number };
  amount: number;
  sabotage: Sabotage;
  /** Declare both databases up front (branches open in parallel) instead of opening each at first use. */
  prefetch?: boolean;
}

export interface TransferHooks {
  /** Kills a backend by pid from outside the branch (the `kill-connection` sabotage). */
  killBackend?(db: string, pid: number): Promise<void>;
}

/**
 * Moves `amount` between accounts in two databases in one global transaction.
 * Sabotage: `overdraft` lets the CHECK fail and the work throw; `swallowed-error`
 * catches that failure so the branch reaches PREPARE in a failed block (vote no);
 * `kill-connection` kills the debit branch's connection before PREPARE.
 */
export async function transfer(coordinator: Coordinator, t: Transfer, hooks: TransferHooks = {}): Promise<void> {
  await coordinator.transaction(async (tx) => {
    const debit = t.sabotage === 'overdraft' || t.sabotage === 'swallowed-error' ? 1_000_000_000 : t.amount;
    const legs = [
      { db: t.from.db, account: t.from.account, delta: -debit, recorded: -t.amount, isDebit: true },
      { db: t.to.db, account: t.to.account, delta: t.amount, recorded: t.amount, isDebit: false },
    ];
    // PostgreSQL cannot see a deadlock that spans two databases: every transfer locks ledgers in name order.
    legs.sort((x, y) => x.db.localeCompare(y.db));
    for (const leg of legs) {
      const db = tx.db(leg.db);
      // Within one ledger (one branch: a one-phase commit) the two legs' rows need distinct ids.
      const rowId = t.from.db === t.to.db && leg.isDebit ? `${t.id}${DEBIT_SUFFIX}` : t.id;
      await db.query('insert into transfers (id, account, delta) values ($1, $2, $3)', [rowId, leg.account, leg.recorded]);
      const update = db.query('update accounts set balance = balance + $1 where id = $2', [leg.delta, leg.account]);
      if (leg.isDebit && t.sabotage === 'swallowed-error') await update.catch(() => undefined);
      else await update;
      if (leg.isDebit && t.sabotage === 'kill-connection') {
        const { rows } = await db.query<{ pid: number }>('select pg_backend_pid() as pid');
        await hooks.killBackend?.(leg.db, rows[0].pid);
      }
    }
  }, t.prefetch ? { databases: [t.from.db, t.to.db] } : {});
}

export interface LedgerState {
  total: number;
  transferIds: Set<string>;
}

export async function ledgerState(pool: Pool): Promise<LedgerState> {
  const total = await pool.query<{ total: string }>('select coalesce(sum(balance), 0) as total from accounts');
  const ids = await pool.query<{ id: string }>('select id from transfers');
  return { total: Number(total.rows[0].total), transferIds: new Set(ids.rows.map((r) => r.id)) };
}

export interface BankCheck {
  total: number;
  expectedTotal: number;
  /** Transfers applied in one ledger but not the other. */
  halfApplied: string[];
  /** Transfers acknowledged as committed to the client but not visible. */
  lostCommits: string[];
  /** Transfers reported aborted to the client but visible. */
  visibleAborts: string[];
  applied: number;
}

/**
 * The invariants, checked after quiescence and recovery: money conserved,
 * every transfer applied in both ledgers or neither, every acknowledged commit
 * visible, nothing reported aborted visible.
 */
export async function checkBank(
  ledgers: { a: Pool; b: Pool },
  accountsPerLedger: number,
  outcomes: { committed: Iterable<string>; aborted: Iterable<string> },
): Promise<BankCheck> {
  const [a, b] = await Promise.all([ledgerState(ledgers.a), ledgerState(ledgers.b)]);
  const single = (id: string) => id.startsWith(SINGLE_LEDGER_PREFIX);
  const inOne = (ids: Set<string>, id: string) => ids.has(id) && ids.has(`${id}${DEBIT_SUFFIX}`);
  const visible = (id: string) => (single(id) ? inOne(a.transferIds, id) || inOne(b.transferIds, id) : a.transferIds.has(id) && b.transferIds.has(id));
  const halfApplied: string[] = [];
  for (const [mine, other] of [[a.transferIds, b.transferIds], [b.transferIds, a.transferIds]]) {
    for (const id of mine) {
      if (id.endsWith(DEBIT_SUFFIX)) {
        if (!mine.has(id.slice(0, -DEBIT_SUFFIX.length))) halfApplied.push(id);
      } else if (single(id) ? !mine.has(`${id}${DEBIT_SUFFIX}`) : !other.has(id)) halfApplied.push(id);
    }
  }
  const lostCommits = [...outcomes.committed].filter((id) => !visible(id));
  const visibleAborts = [...outcomes.aborted].filter((id) => a.transferIds.has(id) || b.transferIds.has(id));
  return {
    total: a.total + b.total,
    expectedTotal: 2 * accountsPerLedger * INITIAL_BALANCE,
    halfApplied: [...new Set(halfApplied)],
    lostCommits,
    visibleAborts,
    applied: [...new Set([...a.transferIds, ...b.transferIds])].filter((id) => !id.endsWith(DEBIT_SUFFIX) && visible(id)).length,
  };
}

/** A deterministic pseudo-random generator (mulberry32), so a failing run can be repeated from its seed. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random transfer. With `singleLedgerRate`, that share of transfers stays
 * within one ledger (one branch, so a one-phase commit); their ids are
 * `SINGLE_LEDGER_PREFIX` + `id`.
 */
export function randomTransfer(random: () => number, id: string, accounts: number, sabotageRates: Partial<Record<Sabotage, number>> = {}, singleLedgerRate = 0): Transfer {
  const aToB = random() < 0.5;
  const pick = () => 1 + Math.floor(random() * accounts);
  if (random() < singleLedgerRate) {
    const db = aToB ? 'ledger_a' : 'ledger_b';
    const from = pick();
    const to = (from % accounts) + 1;
    return { id: `${SINGLE_LEDGER_PREFIX}${id}`, from: { db, account: from }, to: { db, account: to }, amount: 1 + Math.floor(random() * 50), sabotage: 'none', prefetch: false };
  }
  let sabotage: Sabotage = 'none';
  let r = random();
  for (const [kind, rate] of Object.entries(sabotageRates) as Array<[Sabotage, number]>) {
    if (r < rate) {
      sabotage = kind;
      break;
    }
    r -= rate;
  }
  return {
    id,
    from: { db: aToB ? 'ledger_a' : 'ledger_b', account: pick() },
    to: { db: aToB ? 'ledger_b' : 'ledger_a', account: pick() },
    amount: 1 + Math.floor(random() * 50),
    sabotage,
    prefetch: random() < 0.5,
  };
}
