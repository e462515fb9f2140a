import { eq, sql } from 'drizzle-orm';
import { integer, pgTable, serial, uuid } from 'drizzle-orm/pg-core';
import type { BranchQueryable } from '../../../participant-sdk/src';
import { drizzleBranch } from '../../../participant-sdk/src/orm/drizzle';

export const accounts = pgTable('accounts', {
  id: integer('id').primaryKey(),
  balance: integer('balance').notNull(),
});

export const entries = pgTable('entries', {
  id: serial('id').primaryKey(),
  accountId: integer('account_id').notNull().references(() => accounts.id),
  txId: uuid('tx_id').notNull(),
  delta: integer('delta').notNull(),
});

/** Adds `delta` to the account's balance and books it; a balance below 0 fails the table's CHECK. */
export async function book(branch: BranchQueryable, txId: string, account: number, delta: number): Promise<number> {
  const db = drizzleBranch(branch);
  const [row] = await db
    .update(accounts)
    .set({ balance: sql`${accounts.balance} + ${delta}` })
    .where(eq(accounts.id, account))
    .returning({ balance: accounts.balance });
  await db.insert(entries).values({ accountId: account, txId, delta });
  return row.balance;
}
