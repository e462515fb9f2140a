/**
 * A participant service for the end-to-end tests, run as its own process:
 * an express app with the SDK's router at /twopc and one business endpoint,
 * `POST /transfer` (`{account, amount, ref}` in the transaction of the
 * `twopc-transaction` header). `POST /crash-on-commit` makes the process
 * SIGKILL itself when the coordinator's next commit call arrives (after its
 * yes vote, before it commits).
 *
 * Env: PORT, DATABASE_URL, NAME, COORDINATOR_URL, API_TOKEN, SECRET, MODE (held|eager).
 */
import express from 'express';
import { Pool } from 'pg';
import { createParticipant, transactionIdFrom } from '../../participant-sdk/src';
import { problemOf, PROBLEM_CONTENT_TYPE } from '../../participant-sdk/src/problem';

async function main(): Promise<void> {
  const env = process.env;
  const port = Number(env.PORT);
  const pool = new Pool({ connectionString: env.DATABASE_URL, max: 10 });
  pool.on('error', () => undefined);
  const participant = createParticipant({
    name: env.NAME!,
    pool,
    coordinatorUrl: env.COORDINATOR_URL!,
    apiToken: env.API_TOKEN,
    secret: env.SECRET!,
    publicUrl: `http://127.0.0.1:${port}/twopc`,
    mode: env.MODE === 'eager' ? 'eager' : 'held',
    sweepIntervalMs: 0,
    pruneIntervalMs: 0,
  });
  await participant.start();

  const app = express();
  let crashOnCommit = false;
  app.post('/crash-on-commit', (_req, res) => {
    crashOnCommit = true;
    res.json({ armed: true });
  });
  app.use('/twopc/commit', (_req, _res, next) => {
    if (crashOnCommit) process.kill(process.pid, 'SIGKILL');
    else next();
  });
  app.use('/twopc', participant.router());
  app.post('/transfer', express.json(), async (req, res) => {
    try {
      const txId = transactionIdFrom(req);
      if (!txId) throw new Error('twopc-transaction header required');
      const { account, amount, ref } = req.body as { account: number; amount: number; ref: string };
      await participant.enlist(txId, async (db) => {
        await db.query('update accounts set balance = balance + $2 where id = $1', [account, amount]);
        await db.query('insert into transfers (ref) values ($1)', [ref]);
      });
      res.json({ ok: true });
    } catch (e) {
      const problem = problemOf(e);
      res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify({ ...problem, detail: e instanceof Error ? e.message : String(e) }));
    }
  });
  const server = app.listen(port, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`));
  const stop = () => {
    server.close();
    void participant.close().then(() => pool.end()).then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`participant service failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
