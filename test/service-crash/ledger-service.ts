/**
 * A participant service for the service crash tests, run as its own process
 * (coordinator/demo/participant-service.ts): the SDK's router at /twopc and
 * `POST /transfer` (`{id, legs: [{account, delta}], sabotage?}`) in the
 * transaction of the `twopc-transaction` header. Each transfer updates its
 * accounts and inserts one `transfers` row named `id`; `sabotage` inserts the
 * row `taken` instead, whose deferred unique check fails at PREPARE (a "no"
 * vote after the work succeeded). Its self-sweep runs every few hundred
 * milliseconds.
 *
 * Env: that of every participant service (NAME, PORT, DATABASE_URL,
 * COORDINATOR_URL: one URL, or several comma-separated, TWOPC_API_TOKEN,
 * TWOPC_PARTICIPANT_SECRET).
 */
import { z } from 'zod';
import { runParticipantService } from '../../coordinator/demo/participant-service';

const transferSchema = z.object({
  id: z.string(),
  legs: z.array(z.object({ account: z.number().int(), delta: z.number().int() })),
  sabotage: z.boolean().optional(),
});

runParticipantService('ledger service', () => ({
  pool: { max: 12 },
  participant: {
    sweepIntervalMs: 300,
    sweepGraceMs: 1_000,
    // Longer than the coordinator's maxTimeoutMs (10 s) plus its decision latency.
    presumeAbortAfterMs: 15_000,
    requestTimeoutMs: 5_000,
    pruneIntervalMs: 0,
  },
  routes: [
    {
      path: '/transfer',
      body: transferSchema,
      async work(db, { id, legs, sabotage }) {
        for (const leg of legs) await db.query('update accounts set balance = balance + $2 where id = $1', [leg.account, leg.delta]);
        await db.query('insert into transfers (id) values ($1)', [sabotage ? 'taken' : id]);
      },
    },
  ],
  problems: { exposeMessages: true },
}));
