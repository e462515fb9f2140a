import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { TransactionAbortedError } from '../../participant-sdk/src';
import { PostgresParticipant } from '../../participant-sdk/src/postgres';
import { PgCluster } from '../../harness/pg-cluster';
import { TsProcess } from '../e2e/processes';
import { balances, balancesAfter, bankState, createBank } from './bank-db';
import { generatePrismaClient } from './prisma-client';
import { loadBook, ORMS, type Book } from './recipes';

/**
 * Issue 15: the in-process coordinator's `tx.db(name)` written with each ORM
 * (the recipes of test/orm/recipes), on real PostgreSQL, two databases per
 * ORM: a transfer commits in both; a CHECK violation inside the work aborts
 * it in both (thrown: the application's abort; caught by the work: PREPARE
 * votes no with pg's SQLSTATE, below the ORM's wrapping); the application's
 * process SIGKILLed between PREPARE and COMMIT PREPARED, the commit decision
 * durable, commits both at its restart.
 */
let cluster: PgCluster;

beforeAll(async () => {
  generatePrismaClient();
  cluster = await PgCluster.start({ name: 'orm-in-process', maxPreparedTransactions: 10 });
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe.each(ORMS.map((orm) => [orm]))('%s in the in-process coordinator: tx.db(name) written with it', (orm) => {
  const dbs = { a: `${orm}_a`, b: `${orm}_b` } as const;
  let book: Book;
  const pools: Pool[] = [];
  const participants: PostgresParticipant[] = [];
  let coordinator: Coordinator;
  let logDir: string;

  beforeAll(async () => {
    // Loaded once the Prisma client is generated (the top-level beforeAll).
    book = loadBook(orm);
    for (const side of ['a', 'b'] as const) {
      await createBank(cluster, dbs[side]);
      const pool = new Pool({ ...cluster.connectionConfig(dbs[side]), max: 2 });
      pools.push(pool);
      participants.push(new PostgresParticipant({ name: `bank_${side}`, pool }));
    }
    await Promise.all(participants.map((p) => p.start()));
    logDir = fs.mkdtempSync(path.join(os.tmpdir(), `twopc-orm-${orm}-`));
    coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: logDir }), databases: participants, engine: { sweepIntervalMs: 0 } });
  }, 60_000);

  afterAll(async () => {
    await coordinator?.close();
    await Promise.allSettled(participants.map((p) => p.close()));
    await Promise.allSettled(pools.map((p) => p.end()));
    if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await cluster.assertNoPrepared('twopc');
  });

  const state = (side: 'a' | 'b', txId: string) => bankState(cluster, dbs[side], txId);
  const before = async () => Promise.all([balances(cluster, dbs.a), balances(cluster, dbs.b)]);

  it('commits a transfer in both databases', async () => {
    const [a0, b0] = await before();
    const txId = await coordinator.transaction(async (tx) => {
      await book(tx.db('bank_a'), tx.id, 1, -30);
      await book(tx.db('bank_b'), tx.id, 2, 30);
      return tx.id;
    });
    expect(await state('a', txId)).toEqual({ balances: balancesAfter({ 1: -30 }, a0), entries: ['1:-30'] });
    expect(await state('b', txId)).toEqual({ balances: balancesAfter({ 2: 30 }, b0), entries: ['2:30'] });
    expect((await coordinator.engine.status(txId))?.branches.map((b) => b.participant).sort()).toEqual(['bank_a', 'bank_b']);
  });

  it('a CHECK violation thrown inside the work aborts the transfer in both databases', async () => {
    const [a0, b0] = await before();
    let txId = '';
    const failed = await coordinator
      .transaction(async (tx) => {
        txId = tx.id;
        await book(tx.db('bank_b'), tx.id, 2, 1_000);
        await book(tx.db('bank_a'), tx.id, 1, -1_000);
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(failed).toBeInstanceOf(Error);
    expect(await coordinator.engine.status(txId)).toMatchObject({ decision: 'abort' });
    expect(await state('a', txId)).toEqual({ balances: a0, entries: [] });
    expect(await state('b', txId)).toEqual({ balances: b0, entries: [] });
  });

  if (orm === 'prisma') {
    it('a CHECK violation the work catches was undone with Prisma\'s own transaction (a savepoint): the rest commits', async () => {
      const [a0, b0] = await before();
      const txId = await coordinator.transaction(async (tx) => {
        await book(tx.db('bank_b'), tx.id, 2, 7);
        await expect(book(tx.db('bank_a'), tx.id, 1, -1_000)).rejects.toThrow(/accounts_balance_check|check constraint/);
        return tx.id;
      });
      expect(await state('a', txId)).toEqual({ balances: a0, entries: [] });
      expect(await state('b', txId)).toEqual({ balances: balancesAfter({ 2: 7 }, b0), entries: ['2:7'] });
    });
  } else {
    it('a CHECK violation the work catches fails the branch: PREPARE votes no with the SQLSTATE, nothing commits', async () => {
      const [a0, b0] = await before();
      let txId = '';
      const aborted = await coordinator
        .transaction(async (tx) => {
          txId = tx.id;
          await book(tx.db('bank_b'), tx.id, 2, 7);
          await book(tx.db('bank_a'), tx.id, 1, -1_000).catch(() => undefined);
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(aborted).toBeInstanceOf(TransactionAbortedError);
      expect((aborted as TransactionAbortedError).reason).toMatchObject({ cause: 'vote-no', participant: 'bank_a', sqlState: '23514' });
      expect(await state('a', txId)).toEqual({ balances: a0, entries: [] });
      expect(await state('b', txId)).toEqual({ balances: b0, entries: [] });
    });
  }

  it('the application SIGKILLed between PREPARE and COMMIT PREPARED (commit decided) commits both at its restart', async () => {
    const [a0, b0] = await before();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twopc-orm-app-${orm}-`));
    const env = { ORM: orm, LOG_DIR: dir, DATABASE_A: cluster.connectionString(dbs.a), DATABASE_B: cluster.connectionString(dbs.b), NODE_ENV: 'test' };
    try {
      const crashing = new TsProcess(`${orm} app`, 'test/orm/workers/orm-app.ts', [], { ...env, TRANSFER: '3,4,40', TWOPC_CRASH_AT: 'after-commit-decision' });
      const txId = (await crashing.start(/"event":"began","txId":"([^"]+)"/))[1];
      await crashing.exited(30_000);
      expect(crashing.log).not.toMatch(/"event":"(transferred|failed)"/);
      // Both branches prepared, in both databases, and nobody holding them.
      const prepared = await cluster.withClient((c) => c.query<{ database: string }>(`select database from pg_prepared_xacts where gid like $1 order by database`, [`twopc_${txId.replace(/-/g, '')}_%`]));
      expect(prepared.rows.map((r) => r.database)).toEqual([dbs.a, dbs.b]);
      expect((await state('a', txId)).balances).toEqual(a0);

      const restarted = new TsProcess(`${orm} app`, 'test/orm/workers/orm-app.ts', [], env);
      const ready = await restarted.start(/"event":"ready","recovery":(\{[^}]*\})/);
      await restarted.exited(30_000);
      expect(JSON.parse(ready[1])).toMatchObject({ resumedCommit: 1 });
      expect(await state('a', txId)).toEqual({ balances: balancesAfter({ 3: -40 }, a0), entries: ['3:-40'] });
      expect(await state('b', txId)).toEqual({ balances: balancesAfter({ 4: 40 }, b0), entries: ['4:40'] });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
