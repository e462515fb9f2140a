import { Membership } from '../../coordinator/cluster/membership';
import type { LeaseStore } from '../../coordinator/engine/ports/lease-store';
import { parseEngineConfig } from '../../coordinator/engine/engine-config';
import { ParticipantRegistry } from '../../coordinator/engine/participant-registry';
import { TransactionEngine } from '../../coordinator/engine/transaction-engine';
import type { DecisionRecord } from '../../coordinator/engine/ports/decision-log';
import { PostgresDecisionLog, type PostgresDecisionLogOptions } from '../../coordinator/log/postgres/postgres-decision-log';
import { RedisDecisionLog } from '../../coordinator/log/redis/redis-decision-log';
import { FakeParticipant } from '../engine/fake-participant';
import { PgCluster } from '../../harness/pg-cluster';
import { RedisServer, describeIfRedisServer } from '../../harness/redis-server';
import { TcpProxy } from '../../harness/tcp-proxy';

/**
 * Issue 10, finding 8: waits that can hang. A store connection that is
 * black-holed (the peer stops answering, nothing resets the connection) held
 * `decide` — and a lease renewal, and with it the membership loop and its
 * self-fencing — until the kernel gave up on the socket. Real black holes
 * here: a TCP proxy that keeps every connection open and forwards nothing.
 */

const T0 = 1_700_000_000_000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as never;
const decision = (txId: string): Omit<DecisionRecord, 'type'> => ({
  txId,
  at: T0,
  outcome: 'commit',
  source: 'engine',
  branches: [{ branchId: 1, gid: `twopc_${txId.replace(/[^a-z0-9]/g, '')}_1`, participant: 'ledger' }],
});

async function errorOf(p: Promise<unknown>): Promise<(Error & { code?: string; details?: Record<string, unknown> }) | undefined> {
  return p.then(
    () => undefined,
    (e: Error) => e,
  );
}

/** `p`, or a rejection naming `what` if it is still pending after `ms`: a call that hangs fails the test instead of the test timing out. */
function settledWithin<T>(what: string, p: Promise<T>, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms (it hangs)`)), ms);
  });
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('PostgreSQL decision log and membership behind a black-holed connection', () => {
  const DB = 'twopc_deadlines';
  let cluster: PgCluster;
  let url: string;
  let schemas = 0;
  let proxy: TcpProxy;
  const cleanup: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    cluster = await PgCluster.start({ name: 'deadlines' });
    url = await cluster.createDatabase(DB);
  });
  afterAll(async () => {
    await cluster?.destroy();
  });
  beforeEach(async () => {
    proxy = await TcpProxy.start(cluster.port);
  });
  afterEach(async () => {
    proxy.heal();
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
    await proxy.close();
  });

  function store(options: Partial<PostgresDecisionLogOptions> = {}): PostgresDecisionLog {
    const log = new PostgresDecisionLog({
      connectionString: proxy.url(url, cluster.port),
      schema: `deadlines_${process.pid}_${++schemas}`,
      allowVolatile: true,
      onWarning: () => undefined,
      retryDeadlineMs: 1_000,
      callTimeoutMs: 300,
      ...options,
    });
    cleanup.push(() => log.close());
    return log;
  }

  async function opened(options: Partial<PostgresDecisionLogOptions> = {}): Promise<PostgresDecisionLog> {
    const log = store(options);
    await log.open();
    // Warm both pools: the black hole then swallows statements on open connections, not only new ones.
    await log.append({ type: 'begin', txId: 'tx-warm', at: T0, expiresAt: T0 + 1 });
    await log.decide({ ...decision('tx-warm'), outcome: 'abort' });
    return log;
  }

  it('a decide whose server stops answering fails with log-unavailable within its deadline instead of hanging', async () => {
    const log = await opened();
    proxy.blackHole();
    const error = await errorOf(settledWithin('decide', log.decide(decision('tx-hole'))));
    expect(error).toMatchObject({ code: 'log-unavailable', details: { operation: 'decide' } });
    // The last attempt either waited on an open connection or for a new one to start.
    expect(error!.message).toMatch(/decide failed \(tried \d+ times\): (no answer from the server within 300 ms \(callTimeoutMs\)|Connection terminated due to connection timeout)/);
    // Reads have the same deadline.
    await expect(settledWithin('get', log.get('tx-hole'))).rejects.toMatchObject({ code: 'log-unavailable', details: { operation: 'history' } });
  });

  it('a commit whose decision reached the register but whose answer never came is outcome-unknown, and recovery reads the commit back', async () => {
    const log = store();
    const participant = new FakeParticipant('db');
    const engine = new TransactionEngine({
      log,
      participants: new ParticipantRegistry([participant]),
      config: parseEngineConfig({ sweepIntervalMs: 0, phaseTwoBaseDelayMs: 1, phaseTwoMaxDelayMs: 5, commitWaitMs: 2_000, defaultTimeoutMs: 60_000 }),
      logger: quiet,
    });
    await engine.start();
    cleanup.push(() => engine.stop());
    // A decision connection open already: the decision below is sent on it, and runs.
    await log.decide({ ...decision('tx-warm'), outcome: 'abort' });
    const tx = await engine.begin();
    await engine.enlist(tx.id, 'db');
    await engine.enlist(tx.id, 'db');
    // Every branch votes yes; from then on the server runs what it is sent, and nothing it answers comes back.
    participant.onPrepare = () => {
      proxy.blackHole('reply');
      return { vote: 'yes' };
    };
    const error = await errorOf(settledWithin('commit', engine.commit(tx.id)));
    // A deadline on a commit decision is never "not decided": the caller is told it is unknown.
    expect(error).toMatchObject({ code: 'outcome-unknown' });
    expect(participant.committed.size).toBe(0);

    proxy.heal();
    expect((await log.get(tx.id))?.decision?.outcome).toBe('commit');
    const report = await engine.admin.recover();
    expect(report).toMatchObject({ resumedCommit: 1, decidedAbort: 0 });
    await waitFor('phase 2 to commit both branches', () => participant.committed.size === 2);
    expect(participant.rolledBack.size).toBe(0);
  });

  it('a membership whose lease renewal hangs fences itself on time, while the renewal call is still out', async () => {
    // The store's own deadlines far away: the renewal call hangs for the whole test, so fencing
    // can only come from the membership's own timer.
    const log = await opened({ retryDeadlineMs: 120_000, callTimeoutMs: 120_000 });
    const inFlight = new Set<symbol>();
    const leases: LeaseStore = Object.assign(Object.create(log.leases) as LeaseStore, {
      renew: (token: number, ms: number) => {
        const call = Symbol('renew');
        inFlight.add(call);
        return log.leases!.renew(token, ms).finally(() => inFlight.delete(call));
      },
    });
    const fenced: Array<{ token: number; at: number; renewalsOut: number }> = [];
    const membership = new Membership({
      leases,
      leaseMs: 3_000,
      logger: quiet,
      identity: () => ({ name: 'hung', url: 'http://hung.invalid:7070' }),
      onFenced: (token) => fenced.push({ token, at: Date.now(), renewalsOut: inFlight.size }),
    });
    await membership.start();
    cleanup.push(() => membership.stop());
    const token = membership.token!;
    await waitFor('a renewal', async () => inFlight.size === 0 && (await lease(token)).renewed);

    proxy.blackHole();
    await waitFor('the membership to fence itself', () => fenced.length > 0);
    expect(fenced[0]).toMatchObject({ token, renewalsOut: 1 });
    expect(membership.holdsLease).toBe(false);
    // On time: before the store's clock would let another instance take the lease over.
    expect(fenced[0].at).toBeLessThan((await lease(token)).expiresAt);
  });

  async function lease(token: number): Promise<{ expiresAt: number; renewed: boolean }> {
    const schema = `deadlines_${process.pid}_${schemas}`;
    const { rows } = await cluster.withClient(
      (c) =>
        c.query<{ expires_at: number; renewed: boolean }>(
          `SELECT (extract(epoch FROM expires_at) * 1000)::float8 AS expires_at, expires_at > registered_at + interval '3 seconds' AS renewed FROM ${schema}.twopc_log_leases WHERE token = $1`,
          [token],
        ),
      DB,
    );
    return { expiresAt: rows[0].expires_at, renewed: rows[0].renewed };
  }
});

describeIfRedisServer('Redis decision log behind a black-holed connection', () => {
  let server: RedisServer;
  let proxy: TcpProxy;
  let log: RedisDecisionLog | undefined;

  beforeAll(async () => {
    server = await RedisServer.start({ name: 'deadlines-redis' });
    proxy = await TcpProxy.start(server.port);
  });
  afterAll(async () => {
    proxy.heal();
    await log?.close().catch(() => undefined);
    await proxy?.close();
    await server?.destroy();
  });

  it('a decide whose server stops answering fails with log-unavailable within its deadline instead of hanging', async () => {
    log = new RedisDecisionLog({ url: proxy.url(server.url, server.port), namespace: `deadlines-${process.pid}`, retryDeadlineMs: 1_000, callTimeoutMs: 300 });
    await log.open();
    expect((await log.decide(decision('tx-warm'))).outcome).toBe('commit');
    proxy.blackHole();
    const error = await errorOf(settledWithin('decide', log.decide(decision('tx-hole'))));
    expect(error).toMatchObject({ code: 'log-unavailable', details: { operation: 'decide' } });
  });
});
