/**
 * Every statement of an account service's database, in one place. Each bank
 * has `accounts` (balances that may never go negative) and `movements` (one
 * row per global transaction that touched this bank, keyed by its twopc
 * transaction id, so the demo can check that each transfer landed in both
 * banks or in neither).
 */

/** Creates the tables if missing and gives accounts 1..$1 a balance of $2 each (existing accounts are left alone). */
export const SETUP_SQL = [
  `create table if not exists accounts (
     id int primary key,
     balance bigint not null check (balance >= 0)
   )`,
  `create table if not exists movements (
     tx_id uuid primary key,
     account int not null references accounts (id),
     delta bigint not null
   )`,
] as const;

export const SEED_ACCOUNTS = 'insert into accounts (id, balance) select g, $2 from generate_series(1, $1) g on conflict (id) do nothing';

// The balance test sits in the WHERE clause, so an overdraft updates no row
// (a clear business error) instead of tripping the CHECK, which stays as the backstop.
export const DEBIT = 'update accounts set balance = balance - $1 where id = $2 and balance >= $1';
export const CREDIT = 'update accounts set balance = balance + $1 where id = $2';
export const ACCOUNT_EXISTS = 'select 1 from accounts where id = $1';
export const RECORD_MOVEMENT = 'insert into movements (tx_id, account, delta) values ($1, $2, $3)';

export const BALANCES = 'select id, balance::text as balance from accounts order by id';
export const MOVED_TX_IDS = 'select tx_id::text as tx_id from movements';
// Any prepared transaction of this database: after the demo, none may be left (ours or not).
export const PREPARED_HERE = 'select gid from pg_prepared_xacts where database = current_database() order by gid';
