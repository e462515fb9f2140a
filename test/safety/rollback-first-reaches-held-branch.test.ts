import type { Server } from 'node:http';
import { Client, Pool } from 'pg';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { createDecisionLog } from '../../coordinator/log/create-decision-log';
import type { DecisionLog } from '../../coordinator/engine/ports/decision-log';
import type { TwopcParticipant } from '../../participant-sdk/src';
import { PostgresParticipant } from '../../participant-sdk/src/postgres';
import * as sql from '../../participant-sdk/src/postgres/postgres-sql';
import { PgCluster } from '../../harness/pg-cluster';
import { findRedisServer, RedisServer } from '../../harness/redis-server';
import { newBranch, PREFIX as PG_PREFIX } from '../participants/postgres-fixture';
import { callParticipant, closeServer, FakeCoordinator, mountParticipant, PREFIX as SDK_PREFIX, SECRET, TOKEN, waitFor } from '../sdk/sdk-fixture';
import { WorkerProcess } from './worker-process';
import { accountsTableSql } from '../../harness/bank';

/**
 * Issue 10, finding 2: roll-back-first could not reach a branch held by
 * another process. Recovery's lone-branch rule rolls an undecided
 * transaction's only branch back, then asks its state: committed → commit,
 * anything else → abort. Rollback only reached a branch this process held,
 * and status only ended backends running a statement naming the GID, so a
 * branch held idle in transaction by another process read as unknown, the
 * transaction was decided abort, and that process could still commit it in
 * one phase. Two ways to get there: an in-process `Coordinator.start` on a
 * shared PostgreSQL or Redis log (its recovery took the live transactions of
 * other processes), and several SDK replicas behind one `publicUrl`.
 *
 * Every branch's backend now carries the branch's tag (application_name, set
 * with its BEGIN), so rollback and status end it wherever it lives, and wait
 * for it to exit; the in-process coordinator joins the leases of a shared log.
 */

const DB = 'safety_rollback_first';
const LEASE_MS = 1_000;
jest.setTimeout(90_000);

let cluster: PgCluster;
let admin: Client;

const balance = async (): Promise<number> => Number((await admin.query('select balance from accounts where id = 1')).rows[0].balance);

beforeAll(async () => {
  cluster = await PgCluster.start({ name: 'safety-rollback-first' });
  await cluster.createDatabase(DB);
  await cluster.createDatabase('twopc_log');
  admin = new Client(cluster.connectionConfig(DB));
  await admin.connect();
  await admin.query(accountsTableSql({ balance: 'int' }));
});

afterAll(async () => {
  await admin?.end();
  await cluster?.destroy();
});

beforeEach(async () => {
  await admin.query('truncate accounts');
  await admin.query('insert into accounts values (1, 100)');
});

afterEach(async () => {
  // Nothing of ours left prepared (a leftover is rolled back first, so it cannot block the next test).
  const left: string[] = [];
  for (const prefix of [PG_PREFIX, SDK_PREFIX, 'twopc']) left.push(...(await cluster.preparedGids(prefix)));
  for (const gid of left) await admin.query(`rollback prepared '${gid}'`);
  expect(left).toEqual([]);
});

describe('several SDK replicas behind one publicUrl (real processes)', () => {
  let coordinator: FakeCoordinator;
  let pg: Pool;
  let replicaA: WorkerProcess | undefined;
  let replicaB: TwopcParticipant | undefined;
  let serverB: Server | undefined;

  beforeEach(async () => {
    coordinator = new FakeCoordinator();
    await coordinator.start();
    pg = new Pool({ ...cluster.connectionConfig(DB), max: 4 });
  });

  afterEach(async () => {
    await replicaA?.stop();
    await replicaB?.close();
    if (serverB) await closeServer(serverB);
    await pg.end();
    await coordinator.stop();
  });

  it("recovery's rollback and status, reaching the replica that does not hold the branch, end it in the one that does", async () => {
    replicaA = new WorkerProcess('sdk-replica.ts', {
      DATABASE_URL: cluster.connectionString(DB),
      COORDINATOR_URL: coordinator.url,
      SECRET,
      TOKEN,
      PREFIX: SDK_PREFIX,
    });
    const { base: baseA } = await replicaA.waitFor<{ base: string }>('ready');
    const mounted = await mountParticipant(pg, coordinator, { mode: 'held' });
    replicaB = mounted.participant;
    serverB = mounted.server;
    const txId = coordinator.begin();
    replicaA.send({ cmd: 'enlist', txId });
    expect(await replicaA.waitFor('enlisted')).toMatchObject({ txId, pid: expect.any(Number) });
    const branch = coordinator.branch(txId);

    // A coordinator's recovery applies the lone-branch rule; the load balancer sends both calls to B.
    expect(await callParticipant(mounted.base, 'POST', '/rollback', branch)).toMatchObject({ status: 200 });
    const status = await callParticipant(mounted.base, 'GET', `/branches/${branch.gid}`);
    expect(status).toMatchObject({ status: 200, body: { state: 'unknown' } });
    // "unknown" after the rollback: recovery decides abort. The branch must be over wherever it was held,
    // so the one-phase commit of a coordinator that still runs the transaction cannot land on A.
    const late = await callParticipant(baseA, 'POST', '/commit', { ...branch, onePhase: true });
    expect(late).toMatchObject({ status: 409, body: { state: 'rolled-back' } });
    expect(await balance()).toBe(100);
  });
});

describe('the direct adapter: rollback and status from another participant instance (another pool, another process)', () => {
  let pools: Pool[];
  let holder: PostgresParticipant;
  let recoverer: PostgresParticipant;

  beforeEach(async () => {
    pools = [new Pool({ ...cluster.connectionConfig(DB), max: 4 }), new Pool({ ...cluster.connectionConfig(DB), max: 4 })];
    holder = new PostgresParticipant({ name: 'accounts', pool: pools[0], connectionLossWaitMs: 3_000 });
    recoverer = new PostgresParticipant({ name: 'accounts', pool: pools[1], connectionLossWaitMs: 3_000 });
    await holder.start();
    await recoverer.start();
  });

  afterEach(async () => {
    await holder.close();
    await recoverer.close();
    await Promise.all(pools.map((p) => p.end()));
  });

  /** Blocks inserts into twopc_marker until the returned function is called. */
  const lockMarkers = async (): Promise<() => Promise<void>> => {
    const c = new Client(cluster.connectionConfig(DB));
    await c.connect();
    await c.query('begin');
    await c.query('lock table twopc_marker in exclusive mode');
    return async () => {
      await c.query('commit');
      await c.end();
    };
  };
  const waitingOnLock = () =>
    waitFor('the branch statement to wait on the marker lock', async () => (await admin.query(`select 1 from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'`, [DB])).rows.length > 0);

  it('a branch held idle in transaction elsewhere is ended by the rollback, so status is final and the holder cannot commit it', async () => {
    const ref = newBranch('accounts');
    const branch = await holder.openBranch(ref);
    await branch.query('update accounts set balance = balance + 1 where id = 1');
    await recoverer.rollback(ref);
    expect(await recoverer.status(ref)).toBe('unknown');
    await expect(holder.commit(ref, { onePhase: true })).rejects.toMatchObject({ code: 'transaction-aborted' });
    expect(await balance()).toBe(100);
  });

  it('status alone ends a branch held elsewhere before it answers', async () => {
    const ref = newBranch('accounts');
    const branch = await holder.openBranch(ref);
    await branch.query('update accounts set balance = balance + 1 where id = 1');
    expect(await recoverer.status(ref)).toBe('unknown');
    expect(await holder.prepare(ref)).toMatchObject({ vote: 'no' });
    expect(await balance()).toBe(100);
  });

  it('a one-phase COMMIT in flight elsewhere is ended and waited for: status then tells the truth', async () => {
    const ref = newBranch('accounts');
    const branch = await holder.openBranch(ref);
    await branch.query('update accounts set balance = balance + 1 where id = 1');
    const unlock = await lockMarkers();
    const commit = holder.commit(ref, { onePhase: true }).then(
      () => 'committed',
      (e: { code?: string }) => e.code,
    );
    await waitingOnLock();
    await recoverer.rollback(ref);
    expect(await recoverer.status(ref)).toBe('unknown');
    await unlock();
    expect(await commit).toBe('transaction-aborted');
    expect(await balance()).toBe(100);
  });

  it('a branch begun without a tag (by an older version) is still found by its PREPARE text while it runs', async () => {
    const ref = newBranch('accounts');
    const old = new Client(cluster.connectionConfig(DB));
    old.on('error', () => undefined);
    await old.connect();
    await old.query('begin');
    await old.query('update accounts set balance = balance + 1 where id = 1');
    const unlock = await lockMarkers();
    const prepare = old.query(sql.prepareBranch('public', ref.gid, ref.txId)).then(
      () => 'prepared',
      () => 'failed',
    );
    await waitingOnLock();
    await recoverer.rollback(ref);
    expect(await recoverer.status(ref)).toBe('unknown');
    await unlock();
    expect(await prepare).toBe('failed');
    await old.end().catch(() => undefined);
    expect(await balance()).toBe(100);
  });

  it('a PREPARE in flight elsewhere is ended and waited for: nothing is left prepared behind the rollback', async () => {
    const ref = newBranch('accounts');
    const branch = await holder.openBranch(ref);
    await branch.query('update accounts set balance = balance + 1 where id = 1');
    const unlock = await lockMarkers();
    const vote = holder.prepare(ref);
    await waitingOnLock();
    await recoverer.rollback(ref);
    expect(await recoverer.status(ref)).toBe('unknown');
    await unlock();
    expect(await vote).toMatchObject({ vote: 'no' });
    expect(await cluster.preparedGids(PG_PREFIX)).toEqual([]);
    expect(await balance()).toBe(100);
  });
});

const stores: Array<[string, () => Promise<{ log: (name: string) => string; stop(): Promise<void> }>]> = [
  ['PostgreSQL', async () => ({ log: (name) => `${cluster.connectionString('twopc_log')}?schema=${name}`, stop: async () => undefined })],
];
if (findRedisServer()) {
  stores.push([
    'Redis',
    async () => {
      const redis = await RedisServer.start({ name: 'safety-rollback-first' });
      return { log: (name) => `${redis.url}?namespace=${name}`, stop: () => redis.destroy() };
    },
  ]);
}

describe.each(stores)('in-process coordinators in two processes on one %s log', (_store, startStore) => {
  let store: { log: (name: string) => string; stop(): Promise<void> };
  let logs = 0;
  let logSpec: string;
  let reader: DecisionLog;
  let app: WorkerProcess | undefined;
  let other: Coordinator | undefined;
  let otherPool: Pool | undefined;
  let otherParticipant: PostgresParticipant | undefined;

  beforeAll(async () => {
    store = await startStore();
  });

  afterAll(async () => {
    await store?.stop();
  });

  beforeEach(async () => {
    logs += 1;
    logSpec = store.log(`rollback_first_${logs}`);
    reader = createDecisionLog(logSpec, { allowVolatile: true, onWarning: () => undefined });
    await reader.open();
  });

  afterEach(async () => {
    await app?.stop();
    app = undefined;
    await other?.close();
    other = undefined;
    await otherParticipant?.close();
    await otherPool?.end();
    await reader?.close();
  });

  /** The application process A: an in-process coordinator holding one transaction open. */
  async function startApp(pauseCommit: boolean): Promise<{ txId: string }> {
    app = new WorkerProcess('in-process-app.ts', { LOG: logSpec, DATABASE_URL: cluster.connectionString(DB), NAME: 'app-a', GROUP: 'app', LEASE_MS: String(LEASE_MS) });
    await app.waitFor('ready');
    if (pauseCommit) app.send({ cmd: 'pause-commit' });
    app.send({ cmd: 'hold' });
    const { txId } = await app.waitFor<{ txId: string }>('held');
    await waitFor('the branch registration in the shared log', async () => ((await reader.get(txId))?.branches.length ?? 0) === 1);
    return { txId };
  }

  /** Process B: a second in-process coordinator on the same log and database; its start runs recovery. */
  async function startOther(): Promise<Coordinator> {
    otherPool = new Pool({ ...cluster.connectionConfig(DB), max: 4 });
    otherParticipant = new PostgresParticipant({ name: 'db', pool: otherPool, connectionLossWaitMs: 3_000 });
    await otherParticipant.start();
    other = await Coordinator.start({
      log: createDecisionLog(logSpec, { allowVolatile: true, onWarning: () => undefined }),
      databases: [otherParticipant],
      engine: { sweepIntervalMs: 0 },
      // Of app-a's group: it may take app-a's transactions over (it has the same database).
      instance: { name: 'app-b', group: 'app', leaseMs: LEASE_MS },
    });
    return other;
  }

  it("a second coordinator's start-up recovery leaves the live transaction of the first alone", async () => {
    const { txId } = await startApp(false);
    await startOther();
    app!.send({ cmd: 'finish' });
    expect(await app!.waitFor('done')).toMatchObject({ txId, result: 'committed' });
    expect(await balance()).toBe(101);
    expect((await reader.get(txId))?.decision?.outcome).not.toBe('abort');
  });

  it('a coordinator stopped between its lease check and its one-phase COMMIT: the one that takes it over ends the branch it held, so the late COMMIT cannot land', async () => {
    const { txId } = await startApp(true);
    await startOther();
    app!.send({ cmd: 'finish' });
    await app!.waitFor('commit-pending');
    app!.signal('SIGSTOP');
    // B takes the expired lease over and recovers: rollback-first, then status, then the decision.
    await waitFor('the other coordinator to decide the transaction', async () => (await reader.get(txId))?.decision !== undefined, 30_000);
    const decided = (await reader.get(txId))!.decision!;
    app!.signal('SIGCONT');
    app!.send({ cmd: 'release-commit' });
    const done = await app!.waitFor<{ result: string }>('done');
    // Whatever was decided, the branch ended the same way.
    if (decided.outcome === 'abort') {
      expect(done.result).not.toBe('committed');
      expect(await balance()).toBe(100);
    } else {
      expect(await balance()).toBe(101);
    }
    expect(decided.outcome).toBe('abort');
  });
});
