/**
 * The services bench modes' participant service, run as its own process
 * (coordinator/demo/participant-service.ts): one ledger database behind the
 * participant SDK, and two business calls running exactly the statement
 * every bench mode runs on a ledger (UPDATE_BALANCE):
 *
 *   POST /transfer {account, delta}        in the branch of the `twopc-transaction` header (`http`)
 *   POST /transfer-local {account, delta}  committed locally, no twopc (`http-local`)
 *
 * and GET /bench/served, the count of requests it served (--profile).
 *
 * Env: that of every participant service (NAME, PORT, DATABASE_URL,
 * POOL_SIZE, COORDINATOR_URL, TWOPC_API_TOKEN, TWOPC_PARTICIPANT_SECRET).
 * Prints `{"ready":true,...}` once it serves.
 */
import { z } from 'zod';
import { runParticipantService } from '../coordinator/demo/participant-service';
import { servedCounter } from './profile/served-counter';
import { UPDATE_BALANCE } from './transfer-plan';

const bodySchema = z.object({ account: z.number().int().min(1), delta: z.number().int() }).strict();
type Leg = z.output<typeof bodySchema>;
const work = (db: { query(text: string, values: unknown[]): Promise<unknown> }, { account, delta }: Leg) => db.query(UPDATE_BALANCE, [delta, account]);

runParticipantService('ledger service', () => ({
  routes: [{ path: '/transfer', body: bodySchema, work: (db, leg: Leg) => work(db, leg), answer: () => ({ status: 204 }) }],
  localRoutes: [{ path: '/transfer-local', body: bodySchema, work: (db, leg: Leg) => work(db, leg), answer: () => ({ status: 204 }) }],
  onRequest: servedCounter(),
}));
