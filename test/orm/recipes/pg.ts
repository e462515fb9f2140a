import type { BranchQueryable } from '../../../participant-sdk/src';

/** Adds `delta` to the account's balance and books it; a balance below 0 fails the table's CHECK. */
export async function book(db: BranchQueryable, txId: string, account: number, delta: number): Promise<number> {
  const { rows } = await db.query<{ balance: number }>('UPDATE accounts SET balance = balance + $1 WHERE id = $2 RETURNING balance', [delta, account]);
  await db.query('INSERT INTO entries (account_id, tx_id, delta) VALUES ($1, $2, $3)', [account, txId, delta]);
  return rows[0].balance;
}
