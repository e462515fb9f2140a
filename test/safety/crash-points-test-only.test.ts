import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CRASH_ENV, CrashPoints } from '../../coordinator/engine/crash-points';
import { PgCluster } from '../../harness/pg-cluster';
import { jsonLines, runTs } from '../support/child';

/**
 * Finding 11: crash points SIGKILL the process that reaches them. They are a
 * test-only switch, so an application embedding the in-process coordinator
 * must not be armed by a TWOPC_CRASH_AT that leaked into its environment:
 * outside NODE_ENV=test the variable is refused (like the other test-only
 * switches), and under NODE_ENV=test the crash tests still get their crash.
 */

const WORKER = path.join(__dirname, 'one-branch-worker.ts');

describe('crash points are armed only under NODE_ENV=test', () => {
  let cluster: PgCluster;
  const dirs: string[] = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'safety-crash-env' });
    await cluster.createDatabase('app');
    await cluster.withClient((c) => c.query('create table items (id text primary key)'), 'app');
  });

  afterAll(async () => {
    await cluster?.destroy();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  const run = (nodeEnv: string | undefined) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-safety-crash-env-'));
    dirs.push(dir);
    const env: Record<string, string> = { LOG_DIR: dir, PG_URL: cluster.connectionString('app'), GID_PREFIX: 'sce', COUNT: '2', [CRASH_ENV]: 'after-one-phase-commit:1' };
    return runTs(WORKER, { ...env, NODE_ENV: nodeEnv ?? '' });
  };

  it('an application outside NODE_ENV=test is not killed: it refuses the variable at start, naming it, before any work', async () => {
    for (const nodeEnv of ['production', undefined]) {
      const before = await cluster.withClient(async (c) => (await c.query('select count(*)::int as n from items')).rows[0].n as number, 'app');
      const child = await run(nodeEnv);
      expect(child.signal).toBeNull();
      expect(child.code).toBe(1);
      expect(child.stderr).toMatch(/TWOPC_CRASH_AT is a test-only switch .* refused unless NODE_ENV=test/);
      expect(jsonLines<{ begun?: string }>(child.stdout).filter((l) => l.begun)).toEqual([]);
      const after = await cluster.withClient(async (c) => (await c.query('select count(*)::int as n from items')).rows[0].n as number, 'app');
      expect(after).toBe(before);
    }
    await cluster.assertNoPrepared('sce');
  });

  it('under NODE_ENV=test the crash point still fires (the crash tests rely on it)', async () => {
    const child = await run('test');
    expect({ signal: child.signal, stderr: child.stderr }).toEqual({ signal: 'SIGKILL', stderr: '' });
    expect(jsonLines<{ begun?: string }>(child.stdout).filter((l) => l.begun)).toHaveLength(1);
  });

  it('CrashPoints.fromEnv: disarmed when unset or empty, refused without NODE_ENV=test, armed with it', () => {
    expect(() => CrashPoints.fromEnv({})).not.toThrow();
    expect(() => CrashPoints.fromEnv({ [CRASH_ENV]: '' })).not.toThrow();
    expect(() => CrashPoints.fromEnv({ [CRASH_ENV]: 'after-enlist' })).toThrow(expect.objectContaining({ code: 'invalid-config', details: { field: CRASH_ENV } }));
    expect(() => CrashPoints.fromEnv({ [CRASH_ENV]: 'after-enlist', NODE_ENV: 'production' })).toThrow(/refused unless NODE_ENV=test/);
    expect(CrashPoints.fromEnv({ [CRASH_ENV]: 'after-enlist:2', NODE_ENV: 'test' })).toBeInstanceOf(CrashPoints);
    expect(() => CrashPoints.fromEnv({ [CRASH_ENV]: 'no-such-point', NODE_ENV: 'test' })).toThrow(/must be one of/);
  });
});
