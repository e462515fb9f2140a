import { Client, Pool } from 'pg';
import { TransactionAbortedError, isTwopcError } from '../../coordinator/engine/ports/protocol';
import type { PostgresPool } from '../../participant-sdk/src/postgres/postgres-pool';
import { PostgresParticipant } from '../../participant-sdk/src/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';
import { PREFIX, TestPool, newBranch } from './postgres-fixture';
import { accountsTableSql } from '../../harness/bank';

const DB = 'participant_main';

describe('PostgresParticipant on PostgreSQL', () => {
  let cluster: PgCluster;
  let admin: Client;
  let pg: Pool;
  let pool: TestPool;
  let participant: PostgresParticipant;

  const balance = async (id: number): Promise<number | undefined> => {
    const r = await admin.query<{ balance: number }>('select balance from accounts where id = $1', [id]);
    return r.rows[0]?.balance;
  };
  const markerCount = async (gid: string): Promise<number> => Number((await admin.query('select count(*) from twopc_marker where gid = $1', [gid])).rows[0].count);

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'participant' });
    await cluster.createDatabase(DB);
    admin = new Client(cluster.connectionConfig(DB));
    await admin.connect();
    await admin.query(accountsTableSql({ balance: 'int' }));
    await admin.query('create table deferred_unique (x int, constraint deferred_u unique (x) deferrable initially deferred)');
  });

  afterAll(async () => {
    await admin?.end();
    await cluster?.destroy();
  });

  beforeEach(async () => {
    await admin.query('truncate accounts, deferred_unique');
    await admin.query('insert into accounts values (1, 100)');
    pg = new Pool({ ...cluster.connectionConfig(DB), max: 6 });
    pool = new TestPool(pg);
    participant = new PostgresParticipant({ name: 'accounts', pool, connectionLossWaitMs: 3000 });
    await participant.start();
    pool.statements.length = 0;
  });

  afterEach(async () => {
    await participant.close();
    await pg.end();
    const left = await cluster.preparedGids(PREFIX);
    for (const gid of left) await admin.query(`rollback prepared '${gid}'`);
    expect(left).toEqual([]);
  });

  it('accepts a pg Pool as its structural pool type', () => {
    const typed: PostgresPool = pg;
    expect(typeof typed.connect).toBe('function');
  });

  it('prepares a writing branch in one round trip and commits it', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('insert into accounts values ($1, $2)', [2, 50]);
    expect(await participant.prepare(ref)).toEqual({ vote: 'yes' });
    expect(await cluster.preparedGids(PREFIX)).toEqual([ref.gid]);
    expect(await balance(2)).toBeUndefined();
    await participant.commit(ref);
    expect(await balance(2)).toBe(50);
    expect(await markerCount(ref.gid)).toBe(1);
    // Round trips of the adapter for the whole branch: BEGIN, marker+PREPARE, COMMIT PREPARED.
    const adapterStatements = pool.statements.filter((s) => !s.startsWith('insert into accounts'));
    expect(adapterStatements).toHaveLength(3);
    expect(pool.count(/PREPARE TRANSACTION/)).toBe(1);
  });

  it('rolls back a prepared branch', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = 0 where id = 1');
    expect(await participant.prepare(ref)).toEqual({ vote: 'yes' });
    await participant.rollback(ref);
    expect(await balance(1)).toBe(100);
    expect(await markerCount(ref.gid)).toBe(0);
  });

  it('votes read-only for a branch that only read, committing it locally without PREPARE', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    expect((await branch.query('select balance from accounts where id = 1')).rows).toEqual([{ balance: 100 }]);
    expect(await participant.prepare(ref)).toEqual({ vote: 'read-only' });
    expect(branch.phase).toBe('committed');
    expect(pool.count(/PREPARE TRANSACTION/)).toBe(0);
    expect(await markerCount(ref.gid)).toBe(0);
    expect(pg.idleCount).toBe(pg.totalCount);
  });

  it('votes read-only when write statements changed nothing (PREPARE, then COMMIT PREPARED at once)', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    expect((await branch.query('update accounts set balance = 0 where id = 999')).rowCount).toBe(0);
    expect(await participant.prepare(ref)).toEqual({ vote: 'read-only' });
    expect(pool.count(/PREPARE TRANSACTION/)).toBe(1);
    expect(pool.count(/^COMMIT PREPARED/)).toBe(1);
    expect(await markerCount(ref.gid)).toBe(0);
  });

  it('sees a write hidden behind a SELECT tag (data-modifying CTE) and prepares it', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    const r = await branch.query('with w as (insert into accounts values (3, 30) returning id) select count(*)::int as n from w');
    expect(r.command).toBe('SELECT');
    expect(await participant.prepare(ref)).toEqual({ vote: 'yes' });
    await participant.commit(ref);
    expect(await balance(3)).toBe(30);
  });

  it('votes no, naming the failed statement, when a statement of the branch failed', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await expect(branch.query('insert into accounts values (1, 1)')).rejects.toMatchObject({ code: '23505' });
    const vote = await participant.prepare(ref);
    expect(vote).toMatchObject({ vote: 'no', sqlState: '23505' });
    expect(vote.vote === 'no' && vote.reason).toMatch(/duplicate key/);
    await participant.rollback(ref);
    // The failed block was ended before the connection went back to the pool.
    expect(pg.idleCount).toBe(pg.totalCount);
    const c = await pg.connect();
    expect(c.getTransactionStatus()).toBe('I');
    c.release();
  });

  it('votes no when PREPARE itself fails (temporary table, 0A000) and leaves nothing prepared', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('create temp table scratch (x int)');
    await branch.query('insert into scratch values (1)');
    expect(await participant.prepare(ref)).toMatchObject({ vote: 'no', sqlState: '0A000' });
    await participant.rollback(ref);
  });

  it('acknowledges a repeated COMMIT PREPARED through the marker', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = 90 where id = 1');
    await participant.prepare(ref);
    await participant.commit(ref);
    await participant.commit(ref);
    expect(await balance(1)).toBe(90);
  });

  it('acknowledges a rollback of a GID that was never prepared', async () => {
    await expect(participant.rollback(newBranch('accounts'))).resolves.toBeUndefined();
  });

  it('reports a heuristic hazard when the branch was rolled back behind its back and the decision is commit', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = 80 where id = 1');
    await participant.prepare(ref);
    await admin.query(`rollback prepared '${ref.gid}'`);
    await expect(participant.commit(ref)).rejects.toMatchObject({ code: 'heuristic-hazard' });
    expect(await balance(1)).toBe(100);
  });

  it('reports a heuristic hazard when the branch was committed behind its back and the decision is abort', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = 60 where id = 1');
    await participant.prepare(ref);
    await admin.query(`commit prepared '${ref.gid}'`);
    await expect(participant.rollback(ref)).rejects.toMatchObject({ code: 'heuristic-hazard' });
    expect(await balance(1)).toBe(60);
    await admin.query('update accounts set balance = 100 where id = 1');
  });

  it('commits in one phase: marker and COMMIT in one round trip, no PREPARE', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = 70 where id = 1');
    await participant.commit(ref, { onePhase: true });
    expect(await balance(1)).toBe(70);
    expect(await markerCount(ref.gid)).toBe(1);
    expect(pool.count(/PREPARE/)).toBe(0);
    expect(branch.phase).toBe('committed');
  });

  it('ends a READ ONLY transaction: read-only vote, and one-phase commit without the marker INSERT', async () => {
    const prepared = newBranch('accounts', 1);
    const a = await participant.openBranch(prepared);
    await a.query('set transaction read only');
    await a.query('select * from accounts');
    expect(await participant.prepare(prepared)).toEqual({ vote: 'read-only' });
    const onePhase = newBranch('accounts', 2, prepared.txId);
    const b = await participant.openBranch(onePhase);
    await b.query('set transaction read only');
    await b.query('select * from accounts');
    await participant.commit(onePhase, { onePhase: true });
    expect(b.phase).toBe('committed');
    expect(pool.count(/INSERT INTO/)).toBe(0);
  });

  it('throws TransactionAbortedError when the one-phase COMMIT fails (deferred constraint)', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('insert into deferred_unique values (1), (1)');
    await branch.query('update accounts set balance = 60 where id = 1');
    const error = await participant.commit(ref, { onePhase: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransactionAbortedError);
    expect((error as TransactionAbortedError).reason).toMatchObject({ cause: 'commit-failed', sqlState: '23505', participant: 'accounts', branchId: 1 });
    expect(await balance(1)).toBe(100);
    expect(await markerCount(ref.gid)).toBe(0);
    expect(pg.idleCount).toBe(pg.totalCount);
  });

  it('throws TransactionAbortedError when the one-phase COMMIT meets a failed block', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('select 1/0').catch(() => undefined);
    await expect(participant.commit(ref, { onePhase: true })).rejects.toMatchObject({ code: 'transaction-aborted', reason: { sqlState: '22012' } });
  });

  it('refuses statements once the branch ended, and transaction control at any time', async () => {
    const prepared = newBranch('accounts', 1);
    const a = await participant.openBranch(prepared);
    await expect(a.query('commit')).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(a.query('  /* x /* nested */ */ -- c\n ; Rollback')).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(a.query('prepare transaction \'x\'')).rejects.toMatchObject({ code: 'invalid-input' });
    await expect(a.query('begin')).rejects.toMatchObject({ code: 'invalid-input' });
    await a.query('savepoint s1');
    await a.query('update accounts set balance = 1 where id = 1');
    await a.query('rollback to savepoint s1');
    await a.query('update accounts set balance = 2 where id = 1');
    await participant.prepare(prepared);
    await expect(a.query('select 1')).rejects.toMatchObject({ code: 'state-conflict' });
    await participant.commit(prepared);
    await expect(a.query('select 1')).rejects.toMatchObject({ code: 'state-conflict' });
    expect(await balance(1)).toBe(2);

    const rolledBack = newBranch('accounts', 2, prepared.txId);
    const b = await participant.openBranch(rolledBack);
    await participant.rollback(rolledBack);
    await expect(b.query('select 1')).rejects.toBeInstanceOf(TransactionAbortedError);

    const onePhase = newBranch('accounts', 3, prepared.txId);
    const c = await participant.openBranch(onePhase);
    await participant.commit(onePhase, { onePhase: true });
    await expect(c.query('select 1')).rejects.toMatchObject({ code: 'state-conflict' });
  });

  it('votes no when the application ended the transaction itself in a multi-statement text', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = 5 where id = 1; commit');
    const vote = await participant.prepare(ref);
    expect(vote).toMatchObject({ vote: 'no', sqlState: '25P01' });
    expect(vote.vote === 'no' && vote.reason).toMatch(/already ended/);
    await participant.rollback(ref);
  });

  it('rolls back while the application is still running a statement (timeout), cancelling it', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = 1 where id = 1');
    const running = branch.query('select pg_sleep(30)').catch((e: unknown) => e);
    const started = Date.now();
    await participant.rollback(ref);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await running).toMatchObject({ code: '57014' });
    await expect(branch.query('select 1')).rejects.toMatchObject({ code: 'transaction-aborted' });
    expect(await balance(1)).toBe(100);
    expect(pg.idleCount).toBe(pg.totalCount);
  });

  it('answers a repeated prepare with the same vote', async () => {
    const ref = newBranch('accounts');
    const branch = await participant.openBranch(ref);
    await branch.query('update accounts set balance = 3 where id = 1');
    const [first, second] = await Promise.all([participant.prepare(ref), participant.prepare(ref)]);
    expect(first).toEqual({ vote: 'yes' });
    expect(second).toEqual({ vote: 'yes' });
    expect(await participant.prepare(ref)).toEqual({ vote: 'yes' });
    await participant.rollback(ref);
  });

  it('reports branch status: active, prepared, committed, unknown', async () => {
    const twoPhase = newBranch('accounts', 1);
    const onePhase = newBranch('accounts', 2, twoPhase.txId);
    const rolledBack = newBranch('accounts', 3, twoPhase.txId);
    const a = await participant.openBranch(twoPhase);
    await a.query('update accounts set balance = 12 where id = 1');
    expect(await participant.status(twoPhase)).toBe('active');
    await participant.prepare(twoPhase);
    expect(await participant.status(twoPhase)).toBe('prepared');
    await participant.commit(twoPhase);
    expect(await participant.status(twoPhase)).toBe('committed');
    const b = await participant.openBranch(onePhase);
    await b.query('insert into accounts values (5, 5)');
    await participant.commit(onePhase, { onePhase: true });
    expect(await participant.status(onePhase)).toBe('committed');
    const c = await participant.openBranch(rolledBack);
    await c.query('insert into accounts values (6, 6)');
    await participant.prepare(rolledBack);
    await participant.rollback(rolledBack);
    expect(await participant.status(rolledBack)).toBe('unknown');
    expect(await participant.status(newBranch('accounts'))).toBe('unknown');
  });

  it('refuses to commit in two phases a branch that never prepared', async () => {
    const ref = newBranch('accounts');
    await participant.openBranch(ref);
    await expect(participant.commit(ref)).rejects.toMatchObject({ code: 'state-conflict' });
    await participant.rollback(ref);
  });

  it('lists only prepared branches of its prefix and of its own database', async () => {
    await cluster.createDatabase('participant_other');
    const otherPg = new Pool({ ...cluster.connectionConfig('participant_other'), max: 2 });
    const other = new PostgresParticipant({ name: 'other', pool: otherPg });
    try {
      await other.start();
      const here = newBranch('accounts');
      const there = newBranch('other');
      for (const [p, ref] of [[participant, here], [other, there]] as const) {
        const b = await p.openBranch(ref);
        await b.query('create table if not exists t (x int)');
        expect(await p.prepare(ref)).toEqual({ vote: 'yes' });
      }
      const foreign = 'other_0123456789abcdef0123456789abcdef_1';
      const malformed = `${PREFIX}_not_a_gid`;
      for (const [i, gid] of [foreign, malformed].entries()) {
        await admin.query('begin');
        await admin.query('insert into accounts values ($1, 0)', [1000 + i]);
        await admin.query(`prepare transaction '${gid}'`);
      }
      try {
        const listed = await participant.listPrepared(PREFIX);
        expect(listed.map((b) => b.gid)).toEqual([here.gid]);
        expect(Math.abs(listed[0].preparedAt - Date.now())).toBeLessThan(60_000);
        expect((await other.listPrepared(PREFIX)).map((b) => b.gid)).toEqual([there.gid]);
      } finally {
        for (const gid of [foreign, malformed]) await admin.query(`rollback prepared '${gid}'`);
        await participant.rollback(here);
        await other.rollback(there);
      }
    } finally {
      await other.close();
      await otherPg.end();
    }
  });

  it('rolls back held branches on close, returns their connections, and leaves the pool to its owner', async () => {
    const a = newBranch('accounts', 1);
    const b = newBranch('accounts', 2, a.txId);
    const ca = await participant.openBranch(a);
    const cb = await participant.openBranch(b);
    await ca.query('update accounts set balance = 10 where id = 1');
    await cb.query('insert into accounts values (4, 4)');
    expect(pool.listenerCount()).toBe(1);
    await participant.close();
    expect(pool.listenerCount()).toBe(0);
    await expect(ca.query('select 1')).rejects.toMatchObject({ code: 'transaction-aborted' });
    await expect(participant.openBranch(newBranch('accounts'))).rejects.toMatchObject({ code: 'shutting-down' });
    expect(pg.idleCount).toBe(pg.totalCount);
    expect(await balance(1)).toBe(100);
    expect(await balance(4)).toBeUndefined();
    expect((await pg.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('prunes markers whose commit is older than the retention, in batches', async () => {
    await admin.query('delete from twopc_marker');
    await admin.query('delete from twopc_marker_horizon');
    await admin.query(`insert into twopc_marker (gid, tx_id, created_at) select 'old_' || i, gen_random_uuid(), now() - interval '9 days' from generate_series(1, 2500) i`);
    // A horizon taken after those commits, as if 8 days ago: they are provably that old.
    await admin.query(`insert into twopc_marker_horizon (taken_at, horizon) select now() - interval '8 days', pg_snapshot_xmin(pg_current_snapshot())`);
    await admin.query(`insert into twopc_marker (gid, tx_id) select 'new_' || i, gen_random_uuid() from generate_series(1, 3) i`);
    pool.statements.length = 0;
    expect(await participant.pruneMarkers()).toBe(2500);
    expect(pool.count(/^WITH cutoff/)).toBe(3);
    expect(Number((await admin.query('select count(*) from twopc_marker')).rows[0].count)).toBe(3);
    // The horizon this call took proves every commit before it; with a retention of 0 it counts at once.
    expect(await participant.pruneMarkers(0)).toBe(3);
    await expect(participant.pruneMarkers(-1)).rejects.toMatchObject({ code: 'invalid-input' });
  });

  it('migrates a fresh schema once, even with concurrent starters', async () => {
    const schema = 'tpg_concurrent';
    const starters = Array.from({ length: 4 }, (_, i) => new PostgresParticipant({ name: `p${i}`, pool: pg, schema }));
    await Promise.all(starters.map((p) => p.start()));
    const versions = await admin.query(`select version, name from ${schema}.twopc_marker_migrations`);
    expect(versions.rows).toEqual([
      { version: 1, name: 'create twopc_marker' },
      { version: 2, name: 'create twopc_marker_horizon' },
    ]);
    const ref = newBranch('p0');
    const branch = await starters[0].openBranch(ref);
    await branch.query('update accounts set balance = 11 where id = 1');
    await starters[0].commit(ref, { onePhase: true });
    expect(Number((await admin.query(`select count(*) from ${schema}.twopc_marker where gid = $1`, [ref.gid])).rows[0].count)).toBe(1);
    await Promise.all(starters.map((p) => p.close()));
  });

  it('validates its options once, naming the field', () => {
    expect(() => new PostgresParticipant({ name: '', pool })).toThrow(/name/);
    expect(() => new PostgresParticipant({ name: 'x', pool, schema: 'Bad;Schema' })).toThrow(/schema must match/);
    expect(() => new PostgresParticipant({ name: 'x', pool, markerRetentionMs: 0 })).toThrow(/markerRetentionMs must be >= 3600000 \(1 h\)/);
    // Seconds where milliseconds were meant (7 days): 10 minutes of proof, refused.
    expect(() => new PostgresParticipant({ name: 'x', pool, markerRetentionMs: 604_800 })).toThrow(/markerRetentionMs must be >= 3600000/);
    expect(() => new PostgresParticipant({ name: 'x', pool: {} as PostgresPool })).toThrow(/pool must be a pg Pool/);
    const error = (() => {
      try {
        return new PostgresParticipant({ name: 'x', pool, connectionLossWaitMs: 1.5 });
      } catch (e) {
        return e;
      }
    })();
    expect(isTwopcError(error, 'invalid-config') && error.details.field).toBe('connectionLossWaitMs');
  });

  it('refuses a branch reference whose GID does not belong to its transaction', async () => {
    const ref = newBranch('accounts');
    await expect(participant.openBranch({ ...ref, branchId: 2 })).rejects.toMatchObject({ code: 'invalid-input', details: { field: 'gid' } });
    await expect(participant.openBranch({ ...ref, txId: newBranch('x').txId })).rejects.toMatchObject({ code: 'invalid-input' });
  });
});
