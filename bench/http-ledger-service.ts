/**
 * The `http` bench mode's participant service, run as its own process: one
 * ledger database behind the participant SDK, and one business call,
 * `POST /transfer {account, delta}` in the transaction of the
 * `twopc-transaction` header, whose branch runs exactly the statement every
 * bench mode runs on a ledger (UPDATE_BALANCE).
 *
 * Env: LEDGER, PORT, DATABASE_URL, POOL_SIZE, COORDINATOR_URL,
 * TWOPC_API_TOKEN, TWOPC_PARTICIPANT_SECRET. Prints `{"ready":true}` once it serves.
 */
import express, { Response } from 'express';
import { Pool } from 'pg';
import { z } from 'zod';
import { createParticipant, PROBLEM_CONTENT_TYPE, problemOf, transactionIdFrom, TwopcError } from '../participant-sdk/src';
import { UPDATE_BALANCE } from './transfer-plan';

const envSchema = z.object({
  LEDGER: z.string().min(1),
  PORT: z.coerce.number().int().min(1).max(65535),
  DATABASE_URL: z.string().min(1),
  POOL_SIZE: z.coerce.number().int().min(1),
  COORDINATOR_URL: z.string().min(1),
  TWOPC_API_TOKEN: z.string().min(1),
  TWOPC_PARTICIPANT_SECRET: z.string().min(16),
});
const bodySchema = z.object({ account: z.number().int().min(1), delta: z.number().int() }).strict();

function fail(res: Response, e: unknown): void {
  const problem = problemOf(e);
  res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
}

async function main(): Promise<void> {
  const parsed = envSchema.safeParse(process.env);
  if (!parsed.success) throw new Error(`${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`);
  const env = parsed.data;
  // Same pool size as every other mode gets per ledger.
  const pool = new Pool({ connectionString: env.DATABASE_URL, max: env.POOL_SIZE });
  pool.on('error', () => undefined);
  const participant = createParticipant({
    name: env.LEDGER,
    pool,
    coordinatorUrl: env.COORDINATOR_URL,
    apiToken: env.TWOPC_API_TOKEN,
    secret: env.TWOPC_PARTICIPANT_SECRET,
    publicUrl: `http://127.0.0.1:${env.PORT}/twopc`,
  });
  await participant.start();

  const app = express();
  app.disable('etag');
  app.use('/twopc', participant.router());
  app.post('/transfer', express.json(), async (req, res) => {
    try {
      const txId = transactionIdFrom(req);
      if (!txId) throw new TwopcError('invalid-input', 'the twopc-transaction header is required', { field: 'twopc-transaction' });
      const body = bodySchema.safeParse(req.body);
      if (!body.success) throw new TwopcError('invalid-input', `body: ${body.error.issues[0].message}`, { field: body.error.issues[0].path.join('.') });
      await participant.enlist(txId, (db) => db.query(UPDATE_BALANCE, [body.data.delta, body.data.account]));
      res.status(204).end();
    } catch (e) {
      fail(res, e);
    }
  });
  const server = app.listen(env.PORT, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ ready: true, ledger: env.LEDGER, port: env.PORT })}\n`));

  const stop = () => {
    server.close();
    server.closeIdleConnections();
    void participant
      .close()
      .then(() => pool.end())
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`ledger service failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
