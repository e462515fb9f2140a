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
 * Configured by environment variables (validated once at start): those of
 * every participant service (NAME, PORT, DATABASE_URL, COORDINATOR_URL,
 * TWOPC_API_TOKEN, TWOPC_PARTICIPANT_SECRET, POOL_SIZE; see
 * participant-service.ts) and optionally SEED_ACCOUNTS, SEED_BALANCE.
 * Prints `{"ready":true,...}` on stdout once it serves.
 */
import { z } from 'zod';
import type { BranchClient, Problem } from '../../participant-sdk/src';
import { ACCOUNT_EXISTS, CREDIT, DEBIT, RECORD_MOVEMENT, SEED_ACCOUNTS, SETUP_SQL } from './account-sql';
import { runParticipantService, type ServiceRoute } from './participant-service';

const count = (min: number) => z.coerce.number().int().min(min);
const seedSchema = z.object({ SEED_ACCOUNTS: count(1).default(10), SEED_BALANCE: count(0).default(1_000) });

const legSchema = z.object({ account: z.number().int().min(1), amount: z.number().int().min(1).max(1e12) }).strict();
type Leg = z.output<typeof legSchema>;

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

function bankProblem(e: unknown): Problem | undefined {
  return e instanceof BankError ? { type: `urn:bank:problem:${e.code}`, title: e.code, status: e.status, code: e.code, detail: e.message } : undefined;
}

/** The work of one leg, inside this bank's branch of the global transaction. */
async function applyLeg(db: BranchClient, kind: 'debit' | 'credit', txId: string, { account, amount }: Leg): Promise<void> {
  const updated = await db.query(kind === 'debit' ? DEBIT : CREDIT, [amount, account]);
  if (updated.rowCount === 0) {
    const exists = (await db.query(ACCOUNT_EXISTS, [account])).rowCount !== 0;
    // Thrown from the work: the SDK rolls the branch back and votes "no", so the transaction cannot commit.
    if (!exists) throw new BankError(404, 'no-such-account', `account ${account} does not exist`);
    throw new BankError(409, 'insufficient-funds', `account ${account} has less than ${amount}`);
  }
  await db.query(RECORD_MOVEMENT, [txId, account, kind === 'debit' ? -amount : amount]);
}

function legRoute(bank: string, kind: 'debit' | 'credit'): ServiceRoute<Leg> {
  return {
    path: `/${kind}`,
    body: legSchema,
    work: (db, leg, txId) => applyLeg(db, kind, txId, leg),
    answer: ({ account, amount }) => ({ status: 200, body: { bank, kind, account, amount } }),
  };
}

runParticipantService('account service', (env) => {
  const parsed = seedSchema.safeParse(process.env);
  if (!parsed.success) throw new Error(`account service: ${parsed.error.issues[0].path.join('.')} ${parsed.error.issues[0].message}`);
  const seed = parsed.data;
  return {
    routes: [legRoute(env.NAME, 'debit'), legRoute(env.NAME, 'credit')],
    async setup(pool) {
      for (const statement of SETUP_SQL) await pool.query(statement);
      await pool.query(SEED_ACCOUNTS, [seed.SEED_ACCOUNTS, seed.SEED_BALANCE]);
    },
    problems: { map: bankProblem },
  };
});
