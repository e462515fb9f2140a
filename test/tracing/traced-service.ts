import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Pool } from 'pg';
import { createParticipant, transactionIdFrom, TRACEPARENT_HEADER, withRemoteParent } from '../../participant-sdk/src';

// A participant service for the tracing test: POST /entries writes a ledger entry in a branch of
// the caller's transaction. It has no HTTP instrumentation of its own, so it joins the caller's
// trace as the README's tracing section shows.
async function main(): Promise<void> {
  const env = (name: string): string => process.env[name] ?? '';
  const pool = new Pool({ connectionString: env('DB_URL') });
  await pool.query('create table if not exists ledger (id serial primary key, amount int not null)');
  const app = express();
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ledger = createParticipant({ name: env('SERVICE_NAME'), pool, coordinatorUrl: env('TWOPC_URL'), apiToken: env('TWOPC_API_TOKEN'), secret: env('TWOPC_PARTICIPANT_SECRET'), publicUrl: `${url}/twopc` });
  await ledger.start();
  app.use('/twopc', ledger.router());

  app.post('/entries', express.json(), (req, res, next) =>
    withRemoteParent(req.header(TRACEPARENT_HEADER), async () => {
      const txId = transactionIdFrom(req)!;
      const id = await ledger.enlist(txId, async (db) => (await db.query('insert into ledger (amount) values ($1) returning id', [req.body.amount])).rows[0].id);
      res.status(201).json({ id });
    }).catch(next),
  );

  process.on('SIGTERM', () => {
    void ledger
      .close()
      .then(() => pool.end())
      .finally(() => process.exit(0));
  });
  process.stdout.write(`${JSON.stringify({ ready: true, url })}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
