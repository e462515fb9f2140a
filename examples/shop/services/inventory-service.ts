/**
 * The shop's inventory service, its own process on its own database, its
 * work written with Kysely (`kyselyBranch` over the branch the SDK enlists):
 *
 *   POST /reservations  {orderId, lines: [{product, quantity}]}
 *       takes the goods out of stock for the order and records the
 *       reservation; 409 `out-of-stock` when fewer are left (the
 *       `stock >= 0` CHECK refuses the update), 404 `no-such-product`
 *   /twopc/*  the SDK's router: the coordinator's prepare, commit, rollback, status calls
 *
 * Env: that of every participant service (NAME, PORT, DATABASE_URL,
 * COORDINATOR_URL, TWOPC_API_TOKEN, TWOPC_PARTICIPANT_SECRET, POOL_SIZE; see
 * coordinator/demo/participant-service.ts) and STOCK, what each of the goods
 * opens with. Prints `{"ready":true,...}` once it serves.
 */
import { z } from 'zod';
import { runParticipantService } from '../../../coordinator/demo/participant-service';
import type { BranchClient } from '../../../participant-sdk/src';
import { kyselyBranch } from '../../../participant-sdk/src/orm/kysely';
import { CATALOG, initialStock } from '../catalog';
import { reservationBody, type ReservationBody } from './bodies';
import { migrate } from './migrate';
import { Refusal, refusalProblem, violatedCheck } from './refusal';

interface InventoryDatabase {
  products: { id: number; name: string; price: number; stock: number };
  reservations: { order_id: string; product_id: number; quantity: number };
}

const SEED_PRODUCTS = `insert into products (id, name, price, stock)
  select id, name, price, stock from jsonb_to_recordset($1::jsonb) as p(id int, name text, price int, stock int)
  on conflict (id) do nothing`;

/** The order's reservation, in its branch: stock goes down, a reservation row per line. Answers how many units it took. */
async function reserve(branch: BranchClient, { orderId, lines }: ReservationBody): Promise<number> {
  const db = kyselyBranch<InventoryDatabase>(branch);
  // Product rows stay locked until the transaction ends; taking them in id order, two orders cannot deadlock here.
  for (const { product, quantity } of [...lines].sort((a, b) => a.product - b.product)) {
    let updated: { stock: number } | undefined;
    try {
      updated = await db
        .updateTable('products')
        .set((eb) => ({ stock: eb('stock', '-', quantity) }))
        .where('id', '=', product)
        .returning('stock')
        .executeTakeFirst();
    } catch (e) {
      // The statement failed, and with it the branch: it votes no whatever we throw. This says why, to the client.
      if (violatedCheck(e) === 'stock_never_negative') throw new Refusal(409, 'out-of-stock', `product ${product}: fewer than ${quantity} left`);
      throw e;
    }
    if (!updated) throw new Refusal(404, 'no-such-product', `product ${product} does not exist`);
  }
  await db
    .insertInto('reservations')
    .values(lines.map((l) => ({ order_id: orderId, product_id: l.product, quantity: l.quantity })))
    .execute();
  return lines.reduce((sum, l) => sum + l.quantity, 0);
}

runParticipantService('inventory service', () => {
  const seed = z.object({ STOCK: z.coerce.number().int().min(0).max(1_000_000) }).safeParse(process.env);
  if (!seed.success) throw new Error(`inventory service: STOCK ${seed.error.issues[0].message}`);
  const products = CATALOG.map((p) => ({ ...p, stock: initialStock(p, seed.data.STOCK) }));
  return {
    routes: [
      {
        path: '/reservations',
        body: reservationBody,
        work: (db, body: ReservationBody) => reserve(db, body),
        answer: (body: ReservationBody, units: number) => ({ status: 201, body: { orderId: body.orderId, units } }),
      },
    ],
    async setup(pool) {
      await migrate(pool, 'inventory');
      await pool.query(SEED_PRODUCTS, [JSON.stringify(products)]);
    },
    problems: { map: refusalProblem },
  };
});
