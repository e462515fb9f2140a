/**
 * The bank every chaos ledger holds: accounts, one `transfers` row per leg a
 * transaction applied here (named by transaction id and leg), and the
 * `sabotage` table whose deferred unique check makes a branch vote no at
 * PREPARE after its work succeeded.
 */
import { accountsTableSql } from '../harness/bank';

/** One leg of a transfer: `delta` applied to `account` of ledger number `ledger`. */
export interface Leg {
  ledger: number;
  /** Index of the leg within its transaction (the `transfers` row key with the transaction id). */
  leg: number;
  account: number;
  delta: number;
}

/** What a client sends a ledger service's `POST /transfer`: its legs, in the transaction of the `twopc-transaction` header. */
export interface TransferRequest {
  legs: Array<Omit<Leg, 'ledger'>>;
  /** Makes the branch vote no at PREPARE (see SABOTAGE_ROW). */
  sabotage?: boolean;
  mode: 'held' | 'eager';
}

/** The row a sabotaged branch inserts; it is already there, and the check is deferred to PREPARE. */
export const SABOTAGE_ROW = 'taken';

/** Creates the bank (once, before any service starts). */
export function bankSchemaSql(accounts: number, initialBalance: number): string {
  if (!Number.isInteger(accounts) || !Number.isInteger(initialBalance)) throw new Error('accounts and initialBalance must be integers');
  return `
    ${accountsTableSql({ balance: 'bigint', nonNegative: true })};
    create table transfers (tx_id text not null, leg int not null, account int not null, delta bigint not null, primary key (tx_id, leg));
    create table sabotage (id text, constraint sabotage_once unique (id) deferrable initially deferred);
    insert into sabotage values ('${SABOTAGE_ROW}');
    insert into accounts select g, ${initialBalance} from generate_series(1, ${accounts}) g;
  `;
}
