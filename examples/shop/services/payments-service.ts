/**
 * The shop's payments service, its own process on its own database, its
 * work written with Drizzle (`drizzleBranch` over the branch the SDK enlists):
 *
 *   POST /charges  {orderId, customer, amount}
 *       takes the amount from the customer's balance and records the
 *       charge; 409 `insufficient-funds` when the balance is smaller (the
 *       `balance >= 0` CHECK refuses the update), 404 `no-such-customer`
 *   /twopc/*  the SDK's router: the coordinator's prepare, commit, rollback, status calls
 *
 * Env: that of every participant service (NAME, PORT, DATABASE_URL,
 * COORDINATOR_URL, TWOPC_API_TOKEN, TWOPC_PARTICIPANT_SECRET, POOL_SIZE; see
 * coordinator/demo/participant-service.ts), CUSTOMERS and BALANCE (customers
 * 1..CUSTOMERS open with BALANCE each). Prints `{"ready":true,...}` once it serves.
 */
import { eq, sql } from 'drizzle-orm';
import { integer, pgTable, uuid } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import { runParticipantService } from '../../../coordinator/demo/participant-service';
import type { BranchClient } from '../../../participant-sdk/src';
import { drizzleBranch } from '../../../participant-sdk/src/orm/drizzle';
import { MAX_BALANCE } from '../catalog';
import { chargeBody, type ChargeBody } from './bodies';
import { migrate } from './migrate';
import { Refusal, refusalProblem, violatedCheck } from './refusal';

const customers = pgTable('customers', {
  id: integer('id').primaryKey(),
  balance: integer('balance').notNull(),
});

const charges = pgTable('charges', {
  orderId: uuid('order_id').primaryKey(),
  customerId: integer('customer_id').notNull(),
  amount: integer('amount').notNull(),
});

const SEED_CUSTOMERS = 'insert into customers (id, balance) select g, $2 from generate_series(1, $1) g on conflict (id) do nothing';

/** The order's charge, in its branch: the balance goes down, a charge row. Answers the balance left. */
async function charge(branch: BranchClient, { orderId, customer, amount }: ChargeBody): Promise<number> {
  const db = drizzleBranch(branch);
  let updated: { balance: number } | undefined;
  try {
    [updated] = await db
      .update(customers)
      .set({ balance: sql`${customers.balance} - ${amount}` })
      .where(eq(customers.id, customer))
      .returning({ balance: customers.balance });
  } catch (e) {
    // The statement failed, and with it the branch: it votes no whatever we throw. This says why, to the client.
    if (violatedCheck(e) === 'balance_never_negative') throw new Refusal(409, 'insufficient-funds', `customer ${customer} has less than ${amount}`);
    throw e;
  }
  if (!updated) throw new Refusal(404, 'no-such-customer', `customer ${customer} does not exist`);
  await db.insert(charges).values({ orderId, customerId: customer, amount });
  return updated.balance;
}

runParticipantService('payments service', () => {
  const count = (max: number) => z.coerce.number().int().min(1).max(max);
  const seed = z.object({ CUSTOMERS: count(100_000), BALANCE: count(MAX_BALANCE) }).safeParse(process.env);
  if (!seed.success) throw new Error(`payments service: ${seed.error.issues[0].path.join('.')} ${seed.error.issues[0].message}`);
  return {
    routes: [
      {
        path: '/charges',
        body: chargeBody,
        work: (db, body: ChargeBody) => charge(db, body),
        answer: (body: ChargeBody, balance: number) => ({ status: 201, body: { orderId: body.orderId, balance } }),
      },
    ],
    async setup(pool) {
      await migrate(pool, 'payments');
      await pool.query(SEED_CUSTOMERS, [seed.data.CUSTOMERS, seed.data.BALANCE]);
    },
    problems: { map: refusalProblem },
  };
});
