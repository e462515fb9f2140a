/**
 * One bank's account service, run as its own process, on its own PostgreSQL
 * database, taking part in twopc transactions through the participant SDK:
 *
 *   POST /debit   {account, amount}   takes money out (409 `insufficient-funds` if the account has too little)
 *   POST /credit  {account, amount}   puts money in
 *   /twopc/*                          the SDK's router: the coordinator's prepare, commit, rollback, status calls
 *
 * Both business calls must carry the `twopc-transaction` header: their work
 * runs in `participant.enlist(txId, work)`, i.e. in this bank's branch of the
 * global transaction, and becomes visible only if the coordinator commits it.
 *
 * Configured by environment variables (validated once at start):
 * BANK, PORT, DATABASE_URL, COORDINATOR_URL, TWOPC_API_TOKEN,
 * TWOPC_PARTICIPANT_SECRET, and optionally SEED_ACCOUNTS, SEED_BALANCE, POOL_SIZE.
 * Prints `{"ready":true,...}` on stdout once it serves.
 */
import express, { Request, RequestHandler, Response } from 'express';
import { Pool } from 'pg';
import { z } from 'zod';
import { createParticipant, PROBLEM_CONTENT_TYPE, problemOf, transactionIdFrom, TwopcError } from '../../participant-sdk/src';
import type { BranchClient, TwopcParticipant } from '../../participant-sdk/src';
import { ACCOUNT_EXISTS, CREDIT, DEBIT, RECORD_MOVEMENT, SEED_ACCOUNTS, SETUP_SQL } from './account-sql';

const count = (min: number) => z.coerce.number().int().min(min);
const envSchema = z.object({
  BANK: z.string().regex(/^[a-z][a-z0-9_-]{0,30}$/, 'must be a short lower-case name'),
  PORT: count(1).max(65535),
  DATABASE_URL: z.string().min(1),
  COORDINATOR_URL: z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL'),
  TWOPC_API_TOKEN: z.string().min(1),
  TWOPC_PARTICIPANT_SECRET: z.string().min(16),
  SEED_ACCOUNTS: count(1).default(10),
  SEED_BALANCE: count(0).default(1_000),
  POOL_SIZE: count(1).default(10),
});
type ServiceEnv = z.output<typeof envSchema>;

const legSchema = z.object({ account: z.number().int().min(1), amount: z.number().int().min(1).max(1e12) }).strict();

/** A business refusal with its own problem code (the SDK's errors cover the protocol, not the bank). */
class BankError extends Error {
  constructor(
    readonly status: number,
    readonly code: 'insufficient-funds' | 'no-such-account',
    message: string,
  ) {
    super(message);
  }
}

function readEnv(env: NodeJS.ProcessEnv): ServiceEnv {
  const parsed = envSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new Error(`account service: ${issue.path.join('.')} ${issue.message}`);
}

async function setUpDatabase(pool: Pool, env: ServiceEnv): Promise<void> {
  for (const statement of SETUP_SQL) await pool.query(statement);
  await pool.query(SEED_ACCOUNTS, [env.SEED_ACCOUNTS, env.SEED_BALANCE]);
}

/** The work of one leg, inside this bank's branch of the global transaction. */
async function applyLeg(db: BranchClient, kind: 'debit' | 'credit', txId: string, account: number, amount: number): Promise<void> {
  const updated = await db.query(kind === 'debit' ? DEBIT : CREDIT, [amount, account]);
  if (updated.rowCount === 0) {
    const exists = (await db.query(ACCOUNT_EXISTS, [account])).rowCount !== 0;
    // Thrown from the work: the SDK rolls the branch back and votes "no", so the transaction cannot commit.
    if (!exists) throw new BankError(404, 'no-such-account', `account ${account} does not exist`);
    throw new BankError(409, 'insufficient-funds', `account ${account} has less than ${amount}`);
  }
  await db.query(RECORD_MOVEMENT, [txId, account, kind === 'debit' ? -amount : amount]);
}

function legHandler(participant: TwopcParticipant, bank: string, kind: 'debit' | 'credit'): RequestHandler {
  return async (req: Request, res: Response) => {
    try {
      const txId = transactionIdFrom(req);
      if (!txId) throw new TwopcError('invalid-input', 'the twopc-transaction header is required', { field: 'twopc-transaction' });
      const leg = legSchema.safeParse(req.body);
      if (!leg.success) throw new TwopcError('invalid-input', `body.${leg.error.issues[0].path.join('.')}: ${leg.error.issues[0].message}`, { field: leg.error.issues[0].path.join('.') });
      const { account, amount } = leg.data;
      await participant.enlist(txId, (db) => applyLeg(db, kind, txId, account, amount));
      res.status(200).json({ bank, kind, account, amount });
    } catch (e) {
      sendProblem(res, e);
    }
  };
}

function sendProblem(res: Response, e: unknown): void {
  const problem = e instanceof BankError ? { type: `urn:bank:problem:${e.code}`, title: e.code, status: e.status, code: e.code, detail: e.message } : problemOf(e);
  res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
}

async function main(): Promise<void> {
  const env = readEnv(process.env);
  const pool = new Pool({ connectionString: env.DATABASE_URL, max: env.POOL_SIZE });
  // An idle connection whose server went away must not crash the service; the next query reports it.
  pool.on('error', () => undefined);
  await setUpDatabase(pool, env);
  const participant = createParticipant({
    name: env.BANK,
    pool,
    coordinatorUrl: env.COORDINATOR_URL,
    apiToken: env.TWOPC_API_TOKEN,
    secret: env.TWOPC_PARTICIPANT_SECRET,
    publicUrl: `http://127.0.0.1:${env.PORT}/twopc`,
  });
  await participant.start();

  const app = express();
  app.use('/twopc', participant.router());
  app.post('/debit', express.json(), legHandler(participant, env.BANK, 'debit'));
  app.post('/credit', express.json(), legHandler(participant, env.BANK, 'credit'));
  const server = app.listen(env.PORT, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ ready: true, bank: env.BANK, port: env.PORT })}\n`));

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close();
    server.closeIdleConnections();
    // close() rolls back branches still held; prepared ones stay for the coordinator's decision.
    void participant
      .close()
      .then(() => pool.end())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(`account service failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
