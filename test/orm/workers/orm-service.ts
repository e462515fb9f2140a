/**
 * A participant service whose branches' work is written with one ORM (env
 * ORM: pg, drizzle, kysely or prisma), as a process of its own:
 * `POST /book {account, delta}` books it in the transaction of the
 * `twopc-transaction` header with the ORM's recipe (test/orm/recipes).
 * `POST /test/hang-commits` makes it hold every later commit call from the
 * coordinator unanswered, printing `{"event":"commit-arrived"}`: the test then
 * SIGKILLs it with its branch prepared.
 *
 * Env: ORM, and that of every participant service (NAME, PORT, DATABASE_URL,
 * COORDINATOR_URL, TWOPC_API_TOKEN, TWOPC_PARTICIPANT_SECRET).
 */
import { z } from 'zod';
import { runParticipantService } from '../../../coordinator/demo/participant-service';
import { isOrm, loadBook } from '../recipes';

const orm = process.env.ORM;
if (!isOrm(orm)) throw new Error(`ORM must be one of the recipes (got ${JSON.stringify(orm)})`);
const book = loadBook(orm);
let hangCommits = false;

runParticipantService(`${orm} service`, () => ({
  participant: { sweepIntervalMs: 300, sweepGraceMs: 1_000, presumeAbortAfterMs: 15_000, requestTimeoutMs: 5_000, pruneIntervalMs: 0 },
  routes: [
    {
      path: '/book',
      body: z.object({ account: z.number().int(), delta: z.number().int() }),
      work: (db, { account, delta }, txId) => book(db, txId, account, delta),
    },
  ],
  beforeRouter(app) {
    app.post('/test/hang-commits', (_req, res) => {
      hangCommits = true;
      res.json({ ok: true });
    });
    app.post('/twopc/commit', (_req, _res, next) => {
      if (!hangCommits) return next();
      process.stdout.write(`${JSON.stringify({ event: 'commit-arrived', pid: process.pid })}\n`);
    });
  },
  problems: { exposeMessages: true },
}));
