import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { pgTable, timestamp } from 'drizzle-orm/pg-core';
import { Pool } from 'pg';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import type { TransactionScope } from '../../coordinator/in-process/transaction-scope';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import type { BranchQueryable } from '../../participant-sdk/src';
import { drizzleBranch } from '../../participant-sdk/src/orm/drizzle';
import { kyselyBranch } from '../../participant-sdk/src/orm/kysely';
import { prismaBranchAdapter } from '../../participant-sdk/src/orm/prisma';
import { PostgresParticipant } from '../../participant-sdk/src/postgres';
import { PgCluster } from '../../harness/pg-cluster';
import { RecordingPool } from '../sdk/sdk-fixture';
import { balances, balancesAfter, createBank } from './bank-db';
import { generatePrismaClient } from './prisma-client';

/**
 * What each ORM adapter does beyond the recipes (issue 15): pg query configs
 * through a branch, each ORM's own transaction calls refused or (Prisma)
 * turned into savepoints, the in-process `tx.db(name)` opened only at an
 * ORM's first statement, and the SDK's entry points loading no ORM.
 */
const ROOT = path.resolve(__dirname, '../..');

interface Accounts {
  accounts: { id: number; balance: number };
}

/** The generated client (loaded after `generatePrismaClient()`; outside tsc's view, hence untyped). */
function newPrisma(branch: BranchQueryable): any {
  const { PrismaClient } = require('./recipes/generated/prisma/client') as { PrismaClient: new (options: unknown) => any };
  return new PrismaClient({ adapter: prismaBranchAdapter(branch) });
}

describe('ORM adapters over a branch, on real PostgreSQL', () => {
  let cluster: PgCluster;
  const pools: Pool[] = [];
  let recorded: RecordingPool;
  let coordinator: Coordinator;
  let logDir: string;

  beforeAll(async () => {
    generatePrismaClient();
    cluster = await PgCluster.start({ name: 'orm-adapters', maxPreparedTransactions: 10 });
    const participants = [];
    for (const db of ['bank_a', 'bank_b']) {
      await createBank(cluster, db);
      const pool = new Pool({ ...cluster.connectionConfig(db), max: 3 });
      pools.push(pool);
      if (db === 'bank_a') recorded = new RecordingPool(pool);
      participants.push(new PostgresParticipant({ name: db, pool: db === 'bank_a' ? recorded : pool }));
    }
    await Promise.all(participants.map((p) => p.start()));
    logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-orm-adapters-'));
    coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: logDir }), databases: participants, engine: { sweepIntervalMs: 0 } });
  }, 120_000);

  afterAll(async () => {
    await coordinator?.close();
    await Promise.allSettled(pools.map((p) => p.end()));
    await cluster?.destroy();
    if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    recorded.statements.length = 0;
  });

  afterEach(async () => {
    await cluster.assertNoPrepared('twopc');
  });

  /** Runs `work` in a transaction over bank_a and bank_b; returns its id and value. */
  async function transaction<T>(work: (tx: TransactionScope) => Promise<T>): Promise<{ txId: string; value: T }> {
    let txId = '';
    const value = await coordinator.transaction(async (tx) => {
      txId = tx.id;
      return work(tx);
    });
    return { txId, value };
  }

  const sent = (pattern: RegExp) => recorded.statements.filter((s) => pattern.test(s));

  describe('a branch takes pg query configs (what Drizzle and Prisma send)', () => {
    it('rows as arrays keep two columns of one name; values beside the config; the config’s type parsers', async () => {
      const { value } = await transaction(async (tx) => {
        const db = tx.db('bank_a');
        const arrays = await db.query({ text: 'select $1::int as n, $2::int as n', values: [1, 2], rowMode: 'array' });
        const beside = await db.query({ text: 'select $1::int as n', rowMode: 'array' }, [5]);
        const parsed = await db.query({ text: `select '2024-01-02 03:04:05+00'::timestamptz as at`, types: { getTypeParser: () => (v: string) => `raw:${v}` } });
        return [arrays.rows, beside.rows, parsed.rows];
      });
      expect(value).toEqual([[[1, 2]], [[5]], [{ at: 'raw:2024-01-02 03:04:05+00' }]]);
    });

    it('refuses a config that ends the transaction, or has no text, before sending it; the branch goes on', async () => {
      const before = await balances(cluster, 'bank_a');
      await transaction(async (tx) => {
        const db = tx.db('bank_a');
        await db.query('update accounts set balance = balance + 1 where id = 1');
        await expect(db.query({ text: ' COMMIT' })).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'text' } });
        await expect(db.query({ values: [1] } as never)).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'text' } });
      });
      expect(sent(/^\s*COMMIT$/)).toEqual([]);
      expect(await balances(cluster, 'bank_a')).toEqual(balancesAfter({ 1: 1 }, before));
    });
  });

  describe('Drizzle', () => {
    it('refuses db.transaction() before anything is sent; the branch goes on and commits', async () => {
      const before = await balances(cluster, 'bank_a');
      await transaction(async (tx) => {
        const db = drizzleBranch(tx.db('bank_a'));
        await db.execute(sql`update accounts set balance = balance + 2 where id = 2`);
        await expect(db.transaction(async () => undefined)).rejects.toMatchObject({ code: 'invalid-input', message: expect.stringMatching(/Drizzle db\.transaction\(\) cannot run in a twopc branch/) });
      });
      expect(sent(/^begin$/i)).toEqual([]);
      expect(await balances(cluster, 'bank_a')).toEqual(balancesAfter({ 2: 2 }, before));
    });

    it('reads a column through its own type parsers (a timestamp as text, in mode "string")', async () => {
      const stamps = pgTable('stamps', { at: timestamp('at', { withTimezone: true, mode: 'string' }).notNull() });
      await cluster.withClient((c) => c.query(`create table if not exists stamps (at timestamptz not null); insert into stamps values ('2024-01-02 03:04:05+00')`), 'bank_a');
      const { value } = await transaction((tx) => drizzleBranch(tx.db('bank_a')).select().from(stamps));
      // pg's own parser would make it a Date.
      expect(value).toEqual([{ at: '2024-01-02 03:04:05+00' }]);
    });
  });

  describe('Kysely', () => {
    it('refuses transaction() and startTransaction() before anything is sent; the branch goes on and commits', async () => {
      const before = await balances(cluster, 'bank_a');
      await transaction(async (tx) => {
        const db = kyselyBranch<Accounts>(tx.db('bank_a'));
        await db.updateTable('accounts').set((eb) => ({ balance: eb('balance', '+', 3) })).where('id', '=', 3).execute();
        const refused = { code: 'invalid-input', message: expect.stringMatching(/^Kysely transaction\(\) \/ startTransaction\(\) cannot run in a twopc branch/) };
        await expect(db.transaction().execute(async () => undefined)).rejects.toMatchObject(refused);
        await expect(db.transaction().setIsolationLevel('serializable').execute(async () => undefined)).rejects.toMatchObject(refused);
        await expect(db.startTransaction().execute()).rejects.toMatchObject(refused);
      });
      expect(sent(/^(begin|start transaction)( isolation level \w+)?$/i)).toEqual([]);
      expect(await balances(cluster, 'bank_a')).toEqual(balancesAfter({ 3: 3 }, before));
    });

    it('runs concurrent queries on the one connection; destroy() leaves the branch open', async () => {
      const before = await balances(cluster, 'bank_a');
      const { value } = await transaction(async (tx) => {
        const db = kyselyBranch<Accounts>(tx.db('bank_a'));
        const reads = await Promise.all([1, 2, 3, 4].map((id) => db.selectFrom('accounts').select('balance').where('id', '=', id).executeTakeFirstOrThrow()));
        await db.destroy();
        await kyselyBranch<Accounts>(tx.db('bank_a')).updateTable('accounts').set({ balance: 0 }).where('id', '=', 4).execute();
        return reads.map((r) => r.balance);
      });
      expect(value).toEqual(before);
      expect(await balances(cluster, 'bank_a')).toEqual([...before.slice(0, 3), 0]);
      await cluster.withClient((c) => c.query('update accounts set balance = $1 where id = 4', [before[3]]), 'bank_a');
    });
  });

  describe('Prisma', () => {
    it("runs a nested write in a savepoint of the branch, not a transaction of its own", async () => {
      const { txId } = await transaction(async (tx) => {
        const prisma = newPrisma(tx.db('bank_a'));
        await prisma.account.update({ where: { id: 1 }, data: { balance: { increment: 1 }, entries: { create: { txId: tx.id, delta: 1 } } } });
        await prisma.$disconnect();
      });
      expect(sent(/^(BEGIN|COMMIT|ROLLBACK)$/i)).toEqual([]);
      expect(sent(/SAVEPOINT twopc_prisma/)).toEqual(['SAVEPOINT twopc_prisma_1', 'RELEASE SAVEPOINT twopc_prisma_1']);
      expect(txId).toBeTruthy();
    });

    it('undoes an interactive $transaction that throws to its savepoint; the rest of the branch commits', async () => {
      const before = await balances(cluster, 'bank_a');
      await transaction(async (tx) => {
        const prisma = newPrisma(tx.db('bank_a'));
        await prisma.account.update({ where: { id: 1 }, data: { balance: { increment: 5 } } });
        await expect(
          prisma.$transaction(async (t: any) => {
            await t.account.update({ where: { id: 2 }, data: { balance: { increment: 50 } } });
            throw new Error('changed my mind');
          }),
        ).rejects.toThrow('changed my mind');
        await prisma.$disconnect();
      });
      expect(sent(/SAVEPOINT twopc_prisma_1/)).toEqual(['SAVEPOINT twopc_prisma_1', 'ROLLBACK TO SAVEPOINT twopc_prisma_1', 'RELEASE SAVEPOINT twopc_prisma_1']);
      expect(await balances(cluster, 'bank_a')).toEqual(balancesAfter({ 1: 5 }, before));
    });

    it('refuses $transaction({ isolationLevel }) (its SET TRANSACTION would fail the branch); the branch goes on and commits', async () => {
      const before = await balances(cluster, 'bank_a');
      await transaction(async (tx) => {
        const prisma = newPrisma(tx.db('bank_a'));
        await expect(prisma.$transaction(async () => undefined, { isolationLevel: 'Serializable' })).rejects.toThrow(/isolationLevel.*cannot run in a twopc branch/);
        await prisma.account.update({ where: { id: 2 }, data: { balance: { increment: 6 } } });
        await prisma.$disconnect();
      });
      expect(sent(/SET TRANSACTION/i)).toEqual([]);
      expect(await balances(cluster, 'bank_a')).toEqual(balancesAfter({ 2: 6 }, before));
    });

    it('runs one call at a time: a call made during a $transaction is not undone with it', async () => {
      const before = await balances(cluster, 'bank_a');
      await transaction(async (tx) => {
        const prisma = newPrisma(tx.db('bank_a'));
        let inside!: () => void;
        const entered = new Promise<void>((resolve) => (inside = resolve));
        const undone = prisma.$transaction(async (t: any) => {
          await t.account.update({ where: { id: 3 }, data: { balance: { increment: 70 } } });
          inside();
          await new Promise((r) => setTimeout(r, 200));
          throw new Error('undone');
        });
        await entered;
        // Made while the $transaction's savepoint is open (`then` starts a Prisma call): on the
        // branch's connection as it is, it would run inside that savepoint and be undone with it.
        const meanwhile = prisma.account.update({ where: { id: 4 }, data: { balance: { increment: 7 } } }).then(() => undefined);
        await expect(undone).rejects.toThrow('undone');
        await meanwhile;
        await prisma.$disconnect();
      });
      expect(await balances(cluster, 'bank_a')).toEqual(balancesAfter({ 4: 7 }, before));
    });

    it('a $transaction that gave up waiting for its turn (maxWait) is undone when it gets it; the branch goes on', async () => {
      const before = await balances(cluster, 'bank_a');
      await transaction(async (tx) => {
        const prisma = newPrisma(tx.db('bank_a'));
        const long = prisma.$transaction(
          async (t: any) => {
            await t.account.update({ where: { id: 1 }, data: { balance: { increment: 1 } } });
            await new Promise((r) => setTimeout(r, 600));
          },
          { timeout: 10_000 },
        );
        await new Promise((r) => setTimeout(r, 50));
        await expect(prisma.$transaction(async (t: any) => t.account.update({ where: { id: 2 }, data: { balance: { increment: 100 } } }), { maxWait: 100 })).rejects.toThrow(/Unable to start a transaction/);
        await long;
        await prisma.account.update({ where: { id: 3 }, data: { balance: { increment: 3 } } });
        await prisma.$disconnect();
      });
      expect(sent(/twopc_prisma_2/)).toEqual(['SAVEPOINT twopc_prisma_2', 'ROLLBACK TO SAVEPOINT twopc_prisma_2', 'RELEASE SAVEPOINT twopc_prisma_2']);
      expect(await balances(cluster, 'bank_a')).toEqual(balancesAfter({ 1: 1, 3: 3 }, before));
    });
  });

  describe('over the in-process tx.db(name), an ORM opens no branch before its first statement', () => {
    const builders: Record<string, (db: BranchQueryable) => Promise<void>> = {
      drizzle: async (db) => void drizzleBranch(db),
      kysely: async (db) => void kyselyBranch<Accounts>(db),
      prisma: async (db) => {
        const prisma = newPrisma(db);
        await prisma.$connect();
        await prisma.$disconnect();
      },
    };

    it.each(Object.keys(builders).map((k) => [k]))('%s', async (orm) => {
      const { txId } = await transaction(async (tx) => {
        await builders[orm](tx.db('bank_b'));
        await tx.db('bank_a').query('select 1');
      });
      expect((await coordinator.engine.status(txId))?.branches.map((b) => b.participant)).toEqual(['bank_a']);
    });
  });
});

describe('SDK entry points', () => {
  /** The ORM packages a fresh node process has loaded after requiring `modules`. */
  function ormsLoadedBy(modules: string[]): string[] {
    const script = `${modules.map((m) => `require(${JSON.stringify(path.join(ROOT, m))});`).join('')}
      const loaded = new Set(Object.keys(require.cache).map((f) => (/node_modules\\/((@prisma\\/)?[^/]+)\\//.exec(f) || [])[1]).filter((p) => /^(drizzle-orm|kysely|prisma|@prisma\\/.+)$/.test(p || '')));
      process.stdout.write(JSON.stringify([...loaded].sort()));`;
    return JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8' })) as string[];
  }

  it('the SDK and its postgres entry load no ORM; each ORM entry loads its own only', () => {
    expect(ormsLoadedBy(['participant-sdk/src/index.ts', 'participant-sdk/src/postgres/index.ts'])).toEqual([]);
    expect(ormsLoadedBy(['participant-sdk/src/orm/drizzle.ts'])).toEqual(['drizzle-orm']);
    expect(ormsLoadedBy(['participant-sdk/src/orm/kysely.ts'])).toEqual(['kysely']);
    expect(ormsLoadedBy(['participant-sdk/src/orm/prisma.ts'])).toEqual(expect.arrayContaining(['@prisma/adapter-pg']));
    expect(ormsLoadedBy(['participant-sdk/src/orm/prisma.ts'])).not.toEqual(expect.arrayContaining(['drizzle-orm']));
  }, 60_000);
});
