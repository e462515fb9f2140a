import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { CrashPoints } from '../../coordinator/engine/crash-points';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import type { BranchRef, Participant, PreparedBranch } from '../../coordinator/engine/ports/participant';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { PgCluster } from '../../harness/pg-cluster';

/**
 * Finding 5: what a coordinator answers about a transaction that completed.
 *
 * - The file log forgot completed transactions by count as well as by age:
 *   under load an outcome vanished within seconds of completing, and a
 *   retried commit or a status read got 404 (which a client reads as
 *   aborted). Past that count the full records are now reduced to the
 *   transaction's outcome record, kept until the retention period ends.
 * - A `complete` record written after compaction had forgotten the
 *   transaction (a sweep driving phase 2 again from a listing taken before
 *   the transaction completed) brought it back as "committed in one phase",
 *   even when it aborted. Sweeps now skip completed transactions, every
 *   `complete` says which outcome it completed, and one that proves nothing
 *   never reads as committed.
 */

const PREFIX = 'sfo';

/** A participant whose listing can be pinned to an earlier read, and which runs a hook on rollback. */
class StaleListing implements Participant {
  stale?: PreparedBranch[];
  onRollback?: () => Promise<void>;
  constructor(readonly inner: PostgresParticipant) {}
  get name(): string {
    return this.inner.name;
  }
  openBranch(ref: BranchRef) {
    return this.inner.openBranch(ref);
  }
  prepare(b: BranchRef) {
    return this.inner.prepare(b);
  }
  commit(b: BranchRef, o?: { onePhase?: boolean }) {
    return this.inner.commit(b, o);
  }
  async rollback(b: BranchRef): Promise<void> {
    await this.inner.rollback(b);
    const hook = this.onRollback;
    this.onRollback = undefined;
    await hook?.();
  }
  async listPrepared(prefix: string): Promise<PreparedBranch[]> {
    return this.stale ?? this.inner.listPrepared(prefix);
  }
  status(b: BranchRef) {
    return this.inner.status(b);
  }
  close() {
    return this.inner.close();
  }
}

describe('outcomes of completed transactions are kept for the retention period and never invented', () => {
  let cluster: PgCluster;
  const pools: Pool[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-outcomes' });
    for (const db of ['ledger_a', 'ledger_b']) {
      await cluster.createDatabase(db);
      await cluster.withClient((c) => c.query('create table items (id text primary key)'), db);
    }
  });

  afterAll(async () => {
    for (const pool of pools) await pool.end();
    await cluster?.destroy();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    expect(await cluster.preparedGids(PREFIX)).toEqual([]);
  });

  async function start(dir: string, log: { maxRetainedCompleted?: number; completedRetentionMs?: number }) {
    const parts = ['ledger_a', 'ledger_b'].map((db) => {
      const pool = new Pool({ ...cluster.connectionConfig(db), max: 4 });
      pools.push(pool);
      return new StaleListing(new PostgresParticipant({ name: db, pool }));
    });
    await Promise.all(parts.map((p) => p.inner.start()));
    const fileLog = new FileDecisionLog({ dir, autoCompact: false, ...log });
    const coordinator = await Coordinator.start({
      log: fileLog,
      databases: parts as unknown as PostgresParticipant[],
      engine: { gidPrefix: PREFIX, sweepIntervalMs: 0, sweepGraceMs: 0, phaseTwoBaseDelayMs: 5, phaseTwoMaxDelayMs: 50 },
      crashPoints: CrashPoints.disarmed(),
    });
    return { coordinator, parts, fileLog };
  }

  const insert = (db: string, id: string) => ({ db, id });

  it('past the count bound a completed transaction keeps its outcome: status reads and retried commits still answer, also after a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-safety-outcomes-'));
    dirs.push(dir);
    let { coordinator } = await start(dir, { maxRetainedCompleted: 2 });
    const ids: Record<string, string> = {};
    const run = async (name: string, writes: Array<{ db: string; id: string }>, fail = false) => {
      try {
        await coordinator.transaction(async (tx) => {
          ids[name] = tx.id;
          for (const w of writes) await tx.db(w.db).query('insert into items (id) values ($1)', [`${name}-${tx.id}`]);
          if (fail) throw new Error('the application gave up');
        });
      } catch (e) {
        if (!fail) throw e;
      }
    };
    await run('twoPhase', [insert('ledger_a', ''), insert('ledger_b', '')]);
    await run('aborted', [insert('ledger_a', ''), insert('ledger_b', '')], true);
    await run('onePhase', [insert('ledger_a', '')]);
    for (let i = 0; i < 3; i++) await run(`later${i}`, [insert('ledger_a', ''), insert('ledger_b', '')]);
    const report = await coordinator.engine.admin.compactLog();
    expect(report.forgotten).toBe(0);

    const check = async () => {
      const engine = coordinator.engine;
      expect(await engine.status(ids.twoPhase)).toMatchObject({ state: 'completed', decision: 'commit' });
      expect(await engine.status(ids.aborted)).toMatchObject({ state: 'completed', decision: 'abort' });
      expect(await engine.status(ids.onePhase)).toMatchObject({ state: 'completed', decision: 'commit' });
      await expect(engine.commit(ids.twoPhase)).resolves.toMatchObject({ state: 'committed' });
      await expect(engine.commit(ids.onePhase)).resolves.toMatchObject({ state: 'committed' });
      await expect(engine.commit(ids.aborted)).rejects.toMatchObject({ code: 'transaction-aborted' });
      await expect(engine.abort(ids.onePhase)).rejects.toMatchObject({ code: 'state-conflict' });
      await expect(engine.admin.resolve(ids.aborted, 'commit')).rejects.toMatchObject({ code: 'state-conflict' });
    };
    await check();
    await coordinator.close();
    ({ coordinator } = await start(dir, { maxRetainedCompleted: 2 }));
    await check();
    await coordinator.close();
  });

  it('a sweep working from a listing taken before the transaction completed neither re-drives it nor brings it back as committed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-safety-ghost-'));
    dirs.push(dir);
    const { coordinator, parts, fileLog } = await start(dir, { completedRetentionMs: 0 });
    const [a] = parts;
    // Both branches do their work, then the application gives up: abort, both rolled back, complete.
    let id = '';
    let gidA = '';
    await expect(
      coordinator.transaction(async (tx) => {
        id = tx.id;
        await tx.db('ledger_a').query('insert into items (id) values ($1)', [`ghost-${tx.id}`]);
        gidA = `${PREFIX}_${tx.id.replace(/-/g, '')}_1`;
        await tx.db('ledger_b').query('insert into items (id) values ($1)', [`ghost-${tx.id}`]);
        throw new Error('abort after both branches did their work');
      }),
    ).rejects.toThrow(/abort after both/);
    expect(await coordinator.engine.status(id)).toMatchObject({ state: 'completed', decision: 'abort' });
    // Its `complete` is written (phase 2 is over here): from now on only a sweep could drive it again.
    await fileLog.makeDurable();
    await new Promise((r) => setImmediate(r));

    // A listing of ledger_a as a sweep could have read it before the transaction completed.
    a.stale = [{ gid: gidA, preparedAt: Date.now() - 60_000 }];
    // If the sweep drives phase 2 again, compaction forgets the transaction (retention 0) before that drive logs `complete`.
    a.onRollback = async () => {
      await coordinator.engine.admin.compactLog();
    };
    expect(await coordinator.engine.admin.sweep()).toMatchObject({ seen: 1 });
    a.stale = undefined;
    const deadline = Date.now() + 10_000;
    while (coordinator.engine.inDoubtCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await coordinator.close();

    const again = await start(dir, { completedRetentionMs: 0 });
    try {
      const status = await again.coordinator.engine.status(id);
      // Forgotten (retention 0) or aborted; never committed.
      expect(status?.decision ?? null).not.toBe('commit');
      const commit = again.coordinator.engine.commit(id).then(
        (r) => r.state,
        (e: { code?: string }) => e.code,
      );
      expect(await commit).not.toBe('committed');
    } finally {
      await again.coordinator.close();
    }
  });
});
