/**
 * A participant service for the service crash tests, run as its own process:
 * the SDK's router at /twopc and `POST /transfer` (`{id, legs: [{account,
 * delta}], sabotage?}`) in the transaction of the `twopc-transaction`
 * header. Each transfer updates its accounts and inserts one `transfers` row
 * named `id`; `sabotage` inserts the row `taken` instead, whose deferred
 * unique check fails at PREPARE (a "no" vote after the work succeeded).
 * Its self-sweep runs every few hundred milliseconds.
 *
 * Env: PORT, DATABASE_URL, NAME, COORDINATOR_URL (one URL, or several comma-separated), API_TOKEN, SECRET.
 */
import express from 'express';
import { Pool } from 'pg';
import { createParticipant, transactionIdFrom } from '../../participant-sdk/src';
import { problemOf, PROBLEM_CONTENT_TYPE } from '../../participant-sdk/src/problem';

async function main(): Promise<void> {
  const env = process.env;
  const port = Number(env.PORT);
  const pool = new Pool({ connectionString: env.DATABASE_URL, max: 12 });
  pool.on('error', () => undefined);
  const participant = createParticipant({
    name: env.NAME!,
    pool,
    // Several instances: a comma-separated list, in order of preference (the SDK fails over).
    ...(env.COORDINATOR_URL!.includes(',') ? { coordinatorUrls: env.COORDINATOR_URL!.split(',') } : { coordinatorUrl: env.COORDINATOR_URL! }),
    apiToken: env.API_TOKEN,
    secret: env.SECRET!,
    publicUrl: `http://127.0.0.1:${port}/twopc`,
    sweepIntervalMs: 300,
    sweepGraceMs: 1_000,
    // Longer than the coordinator's maxTimeoutMs (10 s) plus its decision latency.
    presumeAbortAfterMs: 15_000,
    requestTimeoutMs: 5_000,
    pruneIntervalMs: 0,
  });
  await participant.start();

  const app = express();
  app.use('/twopc', participant.router());
  app.post('/transfer', express.json(), async (req, res) => {
    try {
      const txId = transactionIdFrom(req);
      if (!txId) throw new Error('twopc-transaction header required');
      const { id, legs, sabotage } = req.body as { id: string; legs: Array<{ account: number; delta: number }>; sabotage?: boolean };
      await participant.enlist(txId, async (db) => {
        for (const leg of legs) await db.query('update accounts set balance = balance + $2 where id = $1', [leg.account, leg.delta]);
        await db.query('insert into transfers (id) values ($1)', [sabotage ? 'taken' : id]);
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
  process.stderr.write(`ledger service failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
