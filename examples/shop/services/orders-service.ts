/**
 * The shop's orders service, its own process on its own database, its work
 * written with Prisma (`prismaBranchAdapter` over the branch the SDK
 * enlists; see orders-store.ts):
 *
 *   POST /orders  {orderId, customer, lines: [{product, quantity, unitPrice}]}
 *       records the order and its lines; answers 201 with its total
 *   /twopc/*  the SDK's router: the coordinator's prepare, commit, rollback, status calls
 *
 * Env: that of every participant service (NAME, PORT, DATABASE_URL,
 * COORDINATOR_URL, TWOPC_API_TOKEN, TWOPC_PARTICIPANT_SECRET, POOL_SIZE; see
 * coordinator/demo/participant-service.ts). Needs its Prisma client
 * generated (`npm run shop` does it first). Prints `{"ready":true,...}` once it serves.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runParticipantService } from '../../../coordinator/demo/participant-service';
import { orderBody, type CreateOrder, type OrderBody } from './bodies';
import { migrate } from './migrate';

runParticipantService('orders service', () => {
  if (!fs.existsSync(path.join(__dirname, 'generated', 'prisma'))) {
    throw new Error(`no Prisma client in ${path.join(__dirname, 'generated')}: generate it from orders.prisma first (npm run shop does)`);
  }
  // Loaded at run time: the generated client it imports is not in the repository, so nothing tsc checks by default imports it.
  const { createOrder } = require(path.join(__dirname, 'orders-store')) as { createOrder: CreateOrder };
  return {
    routes: [
      {
        path: '/orders',
        body: orderBody,
        work: (db, body: OrderBody) => createOrder(db, body),
        answer: (body: OrderBody, order: { total: number }) => ({ status: 201, body: { orderId: body.orderId, total: order.total } }),
      },
    ],
    setup: (pool) => migrate(pool, 'orders'),
  };
});
