/**
 * The `http` bench mode's participant service, run as its own process
 * (coordinator/demo/participant-service.ts): one ledger database behind the
 * participant SDK, and one business call, `POST /transfer {account, delta}`
 * in the transaction of the `twopc-transaction` header, whose branch runs
 * exactly the statement every bench mode runs on a ledger (UPDATE_BALANCE).
 *
 * Env: that of every participant service (NAME, PORT, DATABASE_URL,
 * POOL_SIZE, COORDINATOR_URL, TWOPC_API_TOKEN, TWOPC_PARTICIPANT_SECRET).
 * Prints `{"ready":true,...}` once it serves.
 */
import { z } from 'zod';
import { runParticipantService } from '../coordinator/demo/participant-service';
import { UPDATE_BALANCE } from './transfer-plan';

const bodySchema = z.object({ account: z.number().int().min(1), delta: z.number().int() }).strict();

runParticipantService('ledger service', () => ({
  routes: [
    {
      path: '/transfer',
      body: bodySchema,
      work: (db, { account, delta }) => db.query(UPDATE_BALANCE, [delta, account]),
      answer: () => ({ status: 204 }),
    },
  ],
}));
