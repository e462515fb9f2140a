import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { CRASH_POINTS, type EnlistedCrashPoint as CrashPoint } from '../../coordinator/engine/crash-points';
import type { RecoveryReport } from '../../coordinator/engine/recovery';
import { TsProcess } from '../e2e/processes';
import { freePort } from '../../coordinator/demo/free-port';
import { PgCluster } from '../../harness/pg-cluster';
import { Outcomes, runTraffic, TransferKind } from './bank-traffic';
import { ACCOUNTS, createLedger, INITIAL, ledgerState } from './ledger-db';
import { ServeProcess } from './serve-process';

/**
 * SPEC §9 for the coordinator service: `twopc serve` (file log, two
 * participant databases served by SDK participant services, and reachable
 * directly for sweeps) takes bank transfers over HTTP from concurrent
 * clients and is SIGKILLed at each named crash point, then started again.
 * After recovery and quiescence: every transfer is in both ledgers or in
 * neither, no prepared transaction of ours is left, money is conserved, every
 * commit acknowledged to a client (200/202) is visible and every abort
 * reported to one is not.
 */

const API_TOKEN = 'crash-api-token-0123456789';
const SECRET = 'crash-participant-secret-0123456789';

/** Which hit of each point kills the coordinator: late enough that some transfers finished before. */
const HIT: Record<CrashPoint, number> = {
  'after-enlist': 12,
  'after-prepare-one': 6,
  'after-prepare-all': 6,
  'after-commit-decision': 6,
  'after-commit-one': 6,
  'after-commit-all': 6,
  'after-one-phase-commit': 2,
  'after-abort-decision': 2,
  'after-rollback-one': 2,
};

/** What the restarted coordinator's recovery must have found after each point. */
const EXPECT: Record<CrashPoint, keyof RecoveryReport> = {
  'after-enlist': 'decidedAbort',
  'after-prepare-one': 'decidedAbort',
  'after-prepare-all': 'decidedAbort',
  'after-commit-decision': 'resumedCommit',
  'after-commit-one': 'resumedCommit',
  'after-commit-all': 'resumedCommit',
  'after-one-phase-commit': 'decidedCommit',
  'after-abort-decision': 'resumedAbort',
  'after-rollback-one': 'resumedAbort',
};

describe('twopc serve SIGKILLed at every crash point under HTTP traffic, then restarted', () => {
  let cluster: PgCluster;
  let dir: string;
  let coordinator: ServeProcess;
  let api: string;
  const services: TsProcess[] = [];
  const pools: Record<'a' | 'b', Pool> = {} as Record<'a' | 'b', Pool>;
  const outcomes: Outcomes = { kinds: new Map<string, TransferKind>(), committed: new Set(), aborted: new Set() };


  async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\ncoordinator:\n${coordinator.log.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function inDoubt(): Promise<unknown[]> {
    const res = await fetch(`${api}/v1/transactions?state=in-doubt`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    return ((await res.json()) as { transactions: unknown[] }).transactions;
  }

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'service-crash', maxPreparedTransactions: 50 });
    await Promise.all([createLedger(cluster, 'ledger_a'), createLedger(cluster, 'ledger_b')]);
    pools.a = new Pool({ ...cluster.connectionConfig('ledger_a'), max: 2 });
    pools.b = new Pool({ ...cluster.connectionConfig('ledger_b'), max: 2 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-service-crash-'));
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    const config = path.join(dir, 'config.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        host: '127.0.0.1',
        port,
        dataDir: path.join(dir, 'data'),
        // The coordinator reaches both databases directly too: its sweep ends prepared branches nobody else would.
        databases: { ledger_a: cluster.connectionString('ledger_a'), ledger_b: cluster.connectionString('ledger_b') },
        apiToken: API_TOKEN,
        participantSecret: SECRET,
        logLevel: 'info',
        participantCalls: { prepareTimeoutMs: 2_000, phaseTwoTimeoutMs: 2_000, statusTimeoutMs: 1_000, connectTimeoutMs: 1_000 },
        http: { shutdownTimeoutMs: 2_000 },
        engine: { defaultTimeoutMs: 3_000, maxTimeoutMs: 10_000, commitWaitMs: 1_000, phaseTwoBaseDelayMs: 20, phaseTwoMaxDelayMs: 200, sweepIntervalMs: 500, sweepGraceMs: 500 },
      }),
    );
    coordinator = new ServeProcess(config, { TWOPC_LOG_LEVEL: 'info' });
    await coordinator.start();
    for (const [name, db] of [['ledger_a', 'ledger_a'], ['ledger_b', 'ledger_b']] as const) {
      const servicePort = await freePort();
      const proc = new TsProcess(name, 'test/service-crash/ledger-service.ts', [], {
        PORT: String(servicePort),
        DATABASE_URL: cluster.connectionString(db),
        NAME: name,
        COORDINATOR_URL: api,
        TWOPC_API_TOKEN: API_TOKEN,
        TWOPC_PARTICIPANT_SECRET: SECRET,
      });
      await proc.start(/"ready":true/);
      services.push(proc);
    }
  }, 120_000);

  afterAll(async () => {
    await coordinator?.stop();
    await Promise.allSettled(services.map((s) => s.stop()));
    await Promise.allSettled([pools.a?.end(), pools.b?.end()]);
    await cluster?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each(CRASH_POINTS.map((p) => [p]))('%s', async (point) => {
    const crashPoint = point as CrashPoint;
    // Restart armed: the crash point is read once, at start.
    await coordinator.stop();
    await coordinator.start({ TWOPC_CRASH_AT: `${crashPoint}:${HIT[crashPoint]}` });
    const committedBefore = outcomes.committed.size;
    const deadline = Date.now() + 30_000;
    await runTraffic({
      api,
      token: API_TOKEN,
      services: { a: `http://127.0.0.1:${portOf(services[0])}`, b: `http://127.0.0.1:${portOf(services[1])}` },
      accounts: ACCOUNTS,
      workers: 4,
      seed: CRASH_POINTS.indexOf(crashPoint) + 1,
      outcomes,
      stopped: () => !coordinator.running || Date.now() > deadline,
    });
    const exit = await coordinator.exited(5_000).catch(() => undefined);
    expect([crashPoint, exit?.signal]).toEqual([crashPoint, 'SIGKILL']);
    expect(outcomes.committed.size).toBeGreaterThan(committedBefore);

    const recovery = await coordinator.start();
    // The crash left work of the kind the point implies, and recovery found it.
    expect([crashPoint, EXPECT[crashPoint], recovery[EXPECT[crashPoint]] > 0]).toEqual([crashPoint, EXPECT[crashPoint], true]);

    // Quiescence: phase 2, the coordinator's sweep and the services' self-sweeps have ended every branch.
    await waitFor('no prepared transaction of ours', async () => (await cluster.preparedGids('twopc')).length === 0);
    await waitFor('nothing in doubt at the coordinator', async () => (await inDoubt()).length === 0);

    const [a, b] = await Promise.all([ledgerState(pools.a), ledgerState(pools.b)]);
    const visibleIn = (id: string): string => (a.ids.has(id) ? 'a' : '') + (b.ids.has(id) ? 'b' : '');
    const expectedWhere: Record<TransferKind, string> = { cross: 'ab', 'vote-no': 'ab', 'local-a': 'a', 'local-b': 'b' };
    const halfApplied = [...new Set([...a.ids, ...b.ids])].filter((id) => visibleIn(id) !== expectedWhere[outcomes.kinds.get(id) ?? 'cross']);
    const lostCommits = [...outcomes.committed].filter((id) => visibleIn(id) !== expectedWhere[outcomes.kinds.get(id)!]);
    const visibleAborts = [...outcomes.aborted].filter((id) => visibleIn(id) !== '');
    expect({ point: crashPoint, halfApplied, lostCommits, visibleAborts, total: a.total + b.total }).toEqual({
      point: crashPoint,
      halfApplied: [],
      lostCommits: [],
      visibleAborts: [],
      total: 2 * ACCOUNTS * INITIAL,
    });
    expect(await cluster.preparedGids('twopc')).toEqual([]);
  });
});

/** The port a ledger service process announced (it is in its `ready` line). */
function portOf(service: TsProcess): number {
  const m = /"ready":true,"port":(\d+)/.exec(service.log);
  if (!m) throw new Error(`${service.label}: no ready line`);
  return Number(m[1]);
}
