/**
 * A participant service for the end-to-end tests, run as its own process
 * (coordinator/demo/participant-service.ts): the SDK's router at /twopc and
 * one business endpoint, `POST /transfer` (`{account, amount, ref}` in the
 * transaction of the `twopc-transaction` header). `POST /crash-on-commit`
 * makes the process SIGKILL itself when the coordinator's next commit call
 * arrives (after its yes vote, before it commits).
 *
 * Env: that of every participant service (NAME, PORT, DATABASE_URL,
 * COORDINATOR_URL, TWOPC_API_TOKEN, TWOPC_PARTICIPANT_SECRET), and MODE (held|eager).
 */
import { z } from 'zod';
import { runParticipantService } from '../../coordinator/demo/participant-service';

const transferSchema = z.object({ account: z.number().int(), amount: z.number().int(), ref: z.string() });

runParticipantService('participant service', () => ({
  participant: { mode: process.env.MODE === 'eager' ? 'eager' : 'held', sweepIntervalMs: 0, pruneIntervalMs: 0 },
  beforeRouter(app) {
    let crashOnCommit = false;
    app.post('/crash-on-commit', (_req, res) => {
      crashOnCommit = true;
      res.json({ armed: true });
    });
    app.use('/twopc/commit', (_req, _res, next) => {
      if (crashOnCommit) process.kill(process.pid, 'SIGKILL');
      else next();
    });
  },
  routes: [
    {
      path: '/transfer',
      body: transferSchema,
      async work(db, { account, amount, ref }) {
        await db.query('update accounts set balance = balance + $2 where id = $1', [account, amount]);
        await db.query('insert into transfers (ref) values ($1)', [ref]);
      },
    },
  ],
  problems: { exposeMessages: true },
}));
