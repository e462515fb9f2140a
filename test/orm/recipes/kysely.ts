import type { Generated } from 'kysely';
import type { BranchQueryable } from '../../../participant-sdk/src';
import { kyselyBranch } from '../../../participant-sdk/src/orm/kysely';

interface Database {
  accounts: { id: number; balance: number };
  entries: { id: Generated<number>; account_id: number; tx_id: string; delta: number };
}

/** Adds `delta` to the account's balance and books it; a balance below 0 fails the table's CHECK. */
export async function book(branch: BranchQueryable, txId: string, account: number, delta: number): Promise<number> {
  const db = kyselyBranch<Database>(branch);
  const { balance } = await db
    .updateTable('accounts')
    .set((eb) => ({ balance: eb('balance', '+', delta) }))
    .where('id', '=', account)
    .returning('balance')
    .executeTakeFirstOrThrow();
  await db.insertInto('entries').values({ account_id: account, tx_id: txId, delta }).execute();
  return balance;
}
