import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { MARKER_PRUNE_FAILED, MarkerPruning } from '../../coordinator/participants/postgres/marker-pruning';
import type { EngineLogger } from '../../coordinator/engine/ports/logger';
import { PgCluster } from '../../harness/pg-cluster';
import { startTestService, waitFor } from '../service/service-fixture';
import { loadServiceConfig } from '../../coordinator/assembly/service-config';

// The coordinator's own databases get their twopc_marker pruned as the SDK's participant services prune theirs
// (docs/commit-proof.md): every pruneIntervalMs (here a few ms: the interval is injected), keeping each marker
// markerRetentionMs (7 days) after its commit. No clock is waited on: a horizon row recorded "8 days ago"
// makes the markers before it provably old, without waiting a week.

const DB = 'marker_pruning';

describe("marker pruning in the coordinator's own databases", () => {
  let cluster: PgCluster;
  let admin: Pool;
  let pool: Pool;
  const dirs: string[] = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'marker-pruning' });
    await cluster.createDatabase(DB);
    admin = new Pool({ ...cluster.connectionConfig(DB), max: 1 });
    pool = new Pool({ ...cluster.connectionConfig(DB), max: 4 });
    // Migrates twopc_marker and its horizons (twopc serve does this itself at start).
    const migrator = new PostgresParticipant({ name: 'migrator', pool });
    await migrator.start();
    await migrator.close();
    await admin.query('create table items (id int primary key, n int not null)');
  });

  afterAll(async () => {
    await Promise.all([admin?.end(), pool?.end()]);
    await cluster?.destroy();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await cluster.assertNoPrepared('twopc');
  });

  const tmp = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-prune-'));
    dirs.push(dir);
    return dir;
  };
  const count = async (like: string) => Number((await admin.query('select count(*) from twopc_marker where gid like $1', [like])).rows[0].count);

  /** `old` markers (50) whose commit a horizon proves 8 days old, then 3 recent ones (after that horizon). */
  async function seed(old = 50): Promise<void> {
    await admin.query('delete from twopc_marker');
    await admin.query('delete from twopc_marker_horizon');
    await admin.query(`insert into twopc_marker (gid, tx_id, created_at) select 'old_' || i, gen_random_uuid(), now() - interval '9 days' from generate_series(1, $1::int) i`, [old]);
    await admin.query(`insert into twopc_marker_horizon (taken_at, horizon) select now() - interval '8 days', pg_snapshot_xmin(pg_current_snapshot())`);
    await admin.query(`insert into twopc_marker (gid, tx_id) select 'new_' || i, gen_random_uuid() from generate_series(1, 3) i`);
  }

  function recordingLogger(): EngineLogger & { warnings: Array<Record<string, unknown>> } {
    const warnings: Array<Record<string, unknown>> = [];
    const none = () => undefined;
    return { warnings, trace: none, debug: none, info: none, error: none, fatal: none, warn: (obj: unknown) => void warnings.push(obj as Record<string, unknown>) } as never;
  }

  it('the in-process Coordinator prunes the old markers of its databases every pruneIntervalMs, keeps the recent ones', async () => {
    await seed();
    const db = new PostgresParticipant({ name: 'db', pool });
    const coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: tmp() }), databases: [db], engine: { sweepIntervalMs: 0 }, pruneIntervalMs: 5 });
    try {
      // A one-phase commit writes a marker under any proof: a recent one, to be kept.
      await coordinator.transaction(async (tx) => void (await tx.db('db').query('insert into items values (1, 1)')));
      await waitFor('the old markers pruned', async () => (await count('old_%')) === 0);
      expect(await count('new_%')).toBe(3);
      expect(await count('twopc_%')).toBe(1);
    } finally {
      await coordinator.close();
      await db.close();
    }
  });

  it('a database whose pruning fails is a warning with a stable code, the others are still pruned, and the coordinator runs on', async () => {
    await seed();
    const db = new PostgresParticipant({ name: 'db', pool });
    // Its schema was never migrated: every pass fails on it.
    const broken = new PostgresParticipant({ name: 'broken', pool, schema: 'never_migrated' });
    const logger = recordingLogger();
    const coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: tmp() }), databases: [broken, db], engine: { sweepIntervalMs: 0 }, pruneIntervalMs: 5, logger });
    try {
      await waitFor('the old markers pruned and two failed passes on broken', async () => (await count('old_%')) === 0 && logger.warnings.filter((w) => w.code === MARKER_PRUNE_FAILED).length >= 2);
      expect(logger.warnings.find((w) => w.code === MARKER_PRUNE_FAILED)).toMatchObject({ participant: 'broken', err: expect.any(String) });
      expect(await count('new_%')).toBe(3);
      await coordinator.transaction(async (tx) => void (await tx.db('db').query('insert into items values (2, 2)')));
    } finally {
      await coordinator.close();
      await Promise.all([db.close(), broken.close()]);
    }
  });

  it('a pass ends after the batch in progress once its owner stops (a long backlog is not deleted before a shutdown can finish)', async () => {
    await seed(2_500);
    const db = new PostgresParticipant({ name: 'db', pool });
    try {
      // 2,500 provably old markers: three batches of 1,000 when nothing stops it; an aborted signal stops after the first.
      expect(await db.pruneMarkers(undefined, { signal: AbortSignal.abort() })).toBe(1_000);
      expect(await count('old_%')).toBe(1_500);
      expect(await db.pruneMarkers()).toBe(1_500);
      expect(await count('new_%')).toBe(3);
    } finally {
      await db.close();
    }
  });

  it('twopc serve prunes its databases every pruneIntervalMs (config), keeping the recent markers', async () => {
    await seed();
    const svc = await startTestService({ databases: { db: cluster.connectionString(DB) }, pruneIntervalMs: 5 });
    try {
      await waitFor('the old markers pruned', async () => (await count('old_%')) === 0);
      expect(await count('new_%')).toBe(3);
    } finally {
      await svc.close();
    }
  });
});

describe('marker pruning settings', () => {
  it('stop() aborts the pass in progress through its signal and waits for it to end', async () => {
    let seen: AbortSignal | undefined;
    let release: () => void = () => undefined;
    const slow = {
      name: 'slow',
      pruneMarkers: (_olderThanMs?: number, options?: { signal?: AbortSignal }) => {
        seen = options?.signal;
        return new Promise<number>((resolve) => (release = () => resolve(0)));
      },
    };
    const none = () => undefined;
    const pruning = new MarkerPruning({ databases: [slow], intervalMs: 1, logger: { trace: none, debug: none, info: none, warn: none, error: none, fatal: none } as never });
    pruning.start();
    await waitFor('a pass started', async () => seen !== undefined);
    expect(seen?.aborted).toBe(false);
    let stopped = false;
    const stopping = pruning.stop().then(() => (stopped = true));
    expect(seen?.aborted).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(stopped).toBe(true);
  });

  it('twopc serve: pruneIntervalMs (TWOPC_PRUNE_INTERVAL_MS) 1 h by default, 0 turns it off; markerRetentionMs (TWOPC_MARKER_RETENTION_MS) 7 days, >= 1 h', () => {
    const env = { TWOPC_API_TOKEN: 'a'.repeat(16) };
    expect(loadServiceConfig({ env })).toMatchObject({ pruneIntervalMs: 3_600_000, markerRetentionMs: 7 * 86_400_000 });
    expect(loadServiceConfig({ env: { ...env, TWOPC_PRUNE_INTERVAL_MS: '0', TWOPC_MARKER_RETENTION_MS: '86400000' } })).toMatchObject({ pruneIntervalMs: 0, markerRetentionMs: 86_400_000 });
    expect(() => loadServiceConfig({ env: { ...env, TWOPC_PRUNE_INTERVAL_MS: '-1' } })).toThrow(/pruneIntervalMs must be >= 0/);
    expect(() => loadServiceConfig({ env: { ...env, TWOPC_MARKER_RETENTION_MS: '0' } })).toThrow(/markerRetentionMs must be >= 3600000 \(1 h\)/);
    expect(() => loadServiceConfig({ env: { ...env, TWOPC_MARKER_RETENTION_MS: '604800' } })).toThrow(/markerRetentionMs must be >= 3600000/);
    expect(loadServiceConfig({ env: { ...env, TWOPC_MARKER_RETENTION_MS: '3600000' } })).toMatchObject({ markerRetentionMs: 3_600_000 });
    // "Monthly": past the longest delay a Node timer keeps, which would run it every millisecond. A retention is no timer.
    expect(() => loadServiceConfig({ env: { ...env, TWOPC_PRUNE_INTERVAL_MS: '2592000000' } })).toThrow(/pruneIntervalMs must be <= 2147483647/);
    expect(loadServiceConfig({ env: { ...env, TWOPC_MARKER_RETENTION_MS: '2592000000' } })).toMatchObject({ markerRetentionMs: 2_592_000_000 });
  });

  it('the in-process Coordinator refuses a pruneIntervalMs that is not an integer >= 0, naming the field', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-prune-opts-'));
    try {
      await expect(Coordinator.start({ log: new FileDecisionLog({ dir }), databases: [], pruneIntervalMs: -1 })).rejects.toMatchObject({ code: 'invalid-config', details: { field: 'pruneIntervalMs' } });
      await expect(Coordinator.start({ log: new FileDecisionLog({ dir }), databases: [], pruneIntervalMs: 2 ** 31 })).rejects.toMatchObject({ code: 'invalid-config', details: { field: 'pruneIntervalMs' } });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
