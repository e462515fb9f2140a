import { prismaBranchAdapter } from '../../../participant-sdk/src/orm/prisma';
import type { CreateOrder } from './bodies';
import { PrismaClient } from './generated/prisma/client';

/**
 * The orders service's work, written with Prisma: the order and its lines,
 * in the branch. (Only this file imports the generated client, which exists
 * once `npm run shop` generated it: orders-service.ts loads it at run time.)
 */
export const createOrder: CreateOrder = async (branch, { orderId, customer, lines }) => {
  // One PrismaClient per branch; it opens no connection of its own.
  const prisma = new PrismaClient({ adapter: prismaBranchAdapter(branch) });
  try {
    // A nested write: Prisma wraps it in a transaction of its own, here a savepoint of the branch.
    return await prisma.order.create({
      data: {
        id: orderId,
        customerId: customer,
        total: lines.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0),
        lines: { create: lines.map((l) => ({ productId: l.product, quantity: l.quantity, unitPrice: l.unitPrice })) },
      },
      select: { total: true },
    });
  } finally {
    await prisma.$disconnect();
  }
};
