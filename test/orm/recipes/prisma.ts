import type { BranchQueryable } from '../../../participant-sdk/src';
import { prismaBranchAdapter } from '../../../participant-sdk/src/orm/prisma';
import { PrismaClient } from './generated/prisma/client';

/** Adds `delta` to the account's balance and books it; a balance below 0 fails the table's CHECK. */
export async function book(branch: BranchQueryable, txId: string, account: number, delta: number): Promise<number> {
  // One PrismaClient per branch; it opens no connection of its own.
  const prisma = new PrismaClient({ adapter: prismaBranchAdapter(branch) });
  try {
    // A nested write: Prisma wraps it in a transaction of its own, here a savepoint of the branch.
    const { balance } = await prisma.account.update({
      where: { id: account },
      data: { balance: { increment: delta }, entries: { create: { txId, delta } } },
      select: { balance: true },
    });
    return balance;
  } finally {
    await prisma.$disconnect();
  }
}
