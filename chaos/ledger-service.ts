/**
 * A participant service of the chaos bank, run as its own process: its own
 * database, the participant SDK's router at /twopc, and `POST /transfer`
 * (a TransferRequest) in the transaction of the `twopc-transaction` header.
 * The coordinator reaches it through a chaos proxy (PUBLIC_URL), and it
 * reaches the coordinator through another (COORDINATOR_URL). Its self-sweep
 * runs every half second, so branches whose phase 2 never arrived end soon
 * after quiescence.
 *
 * Env: PORT, DATABASE_URL, NAME, PUBLIC_URL, COORDINATOR_URL, API_TOKEN, SECRET,
 * PRESUME_ABORT_AFTER_MS.
 */
import express from 'express';
import { Pool } from 'pg';
import { createParticipant, problemOf, PROBLEM_CONTENT_TYPE, transactionIdFrom } from '../participant-sdk/src';
import { SABOTAGE_ROW, type TransferRequest } from './bank-schema';
import { exitWithParent } from './orphan-guard';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

async function main(): Promise<void> {
  exitWithParent();
  const port = Number(required('PORT'));
  const pool = new Pool({ connectionString: required('DATABASE_URL'), max: 24, connectionTimeoutMillis: 5_000 });
  // A database crash kills idle connections: the next use reports it, the process must live on.
  pool.on('error', () => undefined);
  const participant = createParticipant({
    name: required('NAME'),
    pool,
    coordinatorUrl: required('COORDINATOR_URL'),
    apiToken: required('API_TOKEN'),
    secret: required('SECRET'),
    publicUrl: required('PUBLIC_URL'),
    sweepIntervalMs: 500,
    sweepGraceMs: 2_000,
    // Longer than the coordinator's longest transaction timeout plus its decision latency.
    presumeAbortAfterMs: Number(process.env.PRESUME_ABORT_AFTER_MS ?? 20_000),
    heldGraceMs: 1_000,
    requestTimeoutMs: 4_000,
    connectionLossWaitMs: 2_000,
    // Markers stay for the checker: a committed branch without one would be a finding.
    pruneIntervalMs: 0,
  });
  await participant.start();

  const app = express();
  app.use('/twopc', participant.router());
  app.post('/transfer', express.json(), async (req, res) => {
    try {
      const txId = transactionIdFrom(req);
      if (!txId) throw new Error('twopc-transaction header required');
      const { legs, sabotage, mode } = req.body as TransferRequest;
      await participant.enlist(
        txId,
        async (db) => {
          // Accounts in id order: two branches of one database never wait on each other in a cycle.
          for (const leg of [...legs].sort((a, b) => a.account - b.account)) {
            await db.query('update accounts set balance = balance + $2 where id = $1', [leg.account, leg.delta]);
            await db.query('insert into transfers (tx_id, leg, account, delta) values ($1, $2, $3, $4)', [txId, leg.leg, leg.account, leg.delta]);
          }
          if (sabotage) await db.query('insert into sabotage (id) values ($1)', [SABOTAGE_ROW]);
        },
        { mode },
      );
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
