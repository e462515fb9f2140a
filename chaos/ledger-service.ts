/**
 * A participant service of the chaos bank, run as its own process (the
 * demo's participant service module, coordinator/demo/participant-service.ts):
 * its own database, the participant SDK's router at /twopc, and `POST
 * /transfer` (a TransferRequest) in the transaction of the
 * `twopc-transaction` header. The coordinator reaches it through a chaos
 * proxy (PUBLIC_URL), and it reaches the coordinator through another
 * (COORDINATOR_URL). Its self-sweep runs every half second, so branches whose
 * phase 2 never arrived end soon after quiescence.
 *
 * Env: that of every participant service (NAME, PORT, DATABASE_URL,
 * PUBLIC_URL, COORDINATOR_URL, TWOPC_API_TOKEN, TWOPC_PARTICIPANT_SECRET),
 * and PRESUME_ABORT_AFTER_MS.
 */
import { z } from 'zod';
import { runParticipantService } from '../coordinator/demo/participant-service';
import { SABOTAGE_ROW, type TransferRequest } from './bank-schema';
import { exitWithParent } from './orphan-guard';

const transferSchema: z.ZodType<TransferRequest> = z.object({
  legs: z.array(z.object({ leg: z.number().int(), account: z.number().int(), delta: z.number().int() })),
  sabotage: z.boolean().optional(),
  mode: z.enum(['held', 'eager']),
});

exitWithParent();
runParticipantService('ledger service', () => ({
  pool: { max: 24, connectionTimeoutMillis: 5_000 },
  participant: {
    sweepIntervalMs: 500,
    sweepGraceMs: 2_000,
    // Longer than the coordinator's longest transaction timeout plus its decision latency.
    presumeAbortAfterMs: Number(process.env.PRESUME_ABORT_AFTER_MS ?? 20_000),
    heldGraceMs: 1_000,
    requestTimeoutMs: 4_000,
    connectionLossWaitMs: 2_000,
    // Markers stay for the checker: a committed branch without one would be a finding.
    pruneIntervalMs: 0,
  },
  routes: [
    {
      path: '/transfer',
      body: transferSchema,
      async work(db, { legs, sabotage }, txId) {
        // Accounts in id order: two branches of one database never wait on each other in a cycle.
        for (const leg of [...legs].sort((a, b) => a.account - b.account)) {
          await db.query('update accounts set balance = balance + $2 where id = $1', [leg.account, leg.delta]);
          await db.query('insert into transfers (tx_id, leg, account, delta) values ($1, $2, $3, $4)', [txId, leg.leg, leg.account, leg.delta]);
        }
        if (sabotage) await db.query('insert into sabotage (id) values ($1)', [SABOTAGE_ROW]);
      },
      enlist: ({ mode }) => ({ mode }),
    },
  ],
  problems: { exposeMessages: true },
}));
