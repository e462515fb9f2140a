import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';

describe('in-process transactions on real PostgreSQL', () => {
  let cluster: PgCluster;
  let pool: Pool;
  let admin: Pool;
  let participant: PostgresParticipant;
  let coordinator: Coordinator;
  let logDir: string;

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'scope' });
    await cluster.createDatabase('scope');
    // One connection: a second branch must wait for the first to give it back.
    pool = new Pool({ ...cluster.connectionConfig('scope'), max: 1 });
    admin = new Pool({ ...cluster.connectionConfig('scope'), max: 1 });
    await admin.query('create table items (id int primary key, n int not null)');
    await admin.query('insert into items values (1, 0)');
    participant = new PostgresParticipant({ name: 'db', pool });
    await participant.start();
    logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-scope-'));
    coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: logDir }), databases: [participant], engine: { sweepIntervalMs: 0 } });
  });

  afterAll(async () => {
    await coordinator?.close();
    await participant?.close();
    await Promise.all([pool?.end(), admin?.end()]);
    await cluster?.destroy();
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await cluster.assertNoPrepared('twopc');
  });

  it('validates the instance options once, naming the field (they matter on a shared log only)', async () => {
    const log = new FileDecisionLog({ dir: fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-scope-opts-')) });
    await expect(Coordinator.start({ log, databases: [participant], instance: { leaseMs: 5 } })).rejects.toMatchObject({ code: 'invalid-config', details: { field: 'instance.leaseMs' } });
    await expect(Coordinator.start({ log, databases: [participant], instance: { nom: 'x' } as never })).rejects.toMatchObject({ code: 'invalid-config', details: { field: 'instance.nom' } });
  });

  it('a branch that finishes opening after its transaction timed out is rolled back, not left holding locks', async () => {
    let releaseFirst!: () => void;
    const first = coordinator.transaction(async (tx) => {
      await tx.db('db').query('update items set n = n + 1 where id = 1');
      await new Promise<void>((resolve) => (releaseFirst = resolve));
    });
    await new Promise((r) => setTimeout(r, 100));
    // Waits for the only connection, and times out meanwhile.
    const second = coordinator.transaction(async (tx) => {
      await tx.db('db').query('update items set n = n + 100 where id = 1');
    }, { timeoutMs: 200 });
    await new Promise((r) => setTimeout(r, 400));
    releaseFirst();
    await first;
    await expect(second).rejects.toBeDefined();
    // The connection came back to the pool clean: nothing idle in transaction, the row not locked.
    await new Promise((r) => setTimeout(r, 100));
    const idle = await admin.query("select count(*)::int as n from pg_stat_activity where datname = 'scope' and state like 'idle in transaction%'");
    expect(idle.rows[0].n).toBe(0);
    await admin.query("set lock_timeout = '1s'");
    await admin.query('update items set n = n where id = 1');
    expect((await admin.query('select n from items where id = 1')).rows[0].n).toBe(1);
  });
});
