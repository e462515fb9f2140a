import Redis from 'ioredis';
import type { DecisionRecord } from '../../coordinator/engine/ports/decision-log';
import { PostgresDecisionLog, type PostgresDecisionLogOptions } from '../../coordinator/log/postgres/postgres-decision-log';
import { RedisDecisionLog, type RedisDecisionLogOptions } from '../../coordinator/log/redis/redis-decision-log';
import { onlineReplicas, replicaAckCommand } from '../../coordinator/log/redis/redis-replicas';
import { PgCluster } from '../../harness/pg-cluster';
import { RedisServer, describeIfRedisServer } from '../../harness/redis-server';

/**
 * Issue 10, finding 4: a store failover can lose forced decisions. A
 * PostgreSQL primary with asynchronous standbys, or a Redis master with
 * replicas, acknowledged a commit decision that a failover to a standby or
 * replica which had not received it then dropped. Real standbys and replicas
 * here: a streaming PostgreSQL standby, a Redis replica (`replicaof`).
 */

const T0 = 1_700_000_000_000;
const decision = (txId: string, outcome: 'commit' | 'abort' = 'commit', source: DecisionRecord['source'] = 'engine'): Omit<DecisionRecord, 'type'> => ({
  txId,
  at: T0,
  outcome,
  source,
  branches: [{ branchId: 1, gid: `twopc_${txId.replace(/[^a-z0-9]/g, '')}_1`, participant: 'ledger' }],
});

async function errorOf(p: Promise<unknown>): Promise<(Error & { code?: string; details?: Record<string, unknown> }) | undefined> {
  return p.then(
    () => undefined,
    (e: Error) => e,
  );
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('PostgreSQL decision log on a primary with a streaming standby', () => {
  const DB = 'twopc_failover';
  let primary: PgCluster;
  let standby: PgCluster;
  let url: string;
  let schemas = 0;
  const logs: PostgresDecisionLog[] = [];

  beforeAll(async () => {
    // fsync on: these stores start without allowVolatile, and must be refused for the standby alone.
    primary = await PgCluster.start({ name: 'failover-primary', durable: true, settings: { wal_keep_size: '256MB' } });
    url = await primary.createDatabase(DB);
    standby = await PgCluster.standbyOf(primary, 'standby1');
    await waitForStandby(true);
  });
  afterAll(async () => {
    await standby?.destroy();
    await primary?.destroy();
  });
  afterEach(async () => {
    for (const log of logs.splice(0)) await log.close().catch(() => undefined);
    await setSynchronousStandbys('');
  });

  function store(options: Partial<PostgresDecisionLogOptions> = {}): PostgresDecisionLog {
    const log = new PostgresDecisionLog({ connectionString: url, schema: `failover_${process.pid}_${++schemas}`, retryDeadlineMs: 1_000, callTimeoutMs: 500, ...options });
    logs.push(log);
    return log;
  }

  async function standbysStreaming(): Promise<number> {
    const { rows } = await primary.withClient((c) => c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'"));
    return rows[0].n;
  }

  async function waitForStandby(attached: boolean): Promise<void> {
    await waitFor(attached ? 'the standby to stream' : 'the standby to go away', async () => (await standbysStreaming()) === (attached ? 1 : 0));
  }

  async function setSynchronousStandbys(names: string): Promise<void> {
    await primary.withClient(async (c) => {
      await c.query(`ALTER SYSTEM SET synchronous_standby_names = '${names}'`);
      await c.query('SELECT pg_reload_conf()');
    });
    await waitFor('the setting to take', async () => {
      const { rows } = await primary.withClient((c) => c.query<{ s: string }>("SELECT current_setting('synchronous_standby_names') AS s"));
      return rows[0].s === names;
    });
  }

  it('refuses to open while a standby streams asynchronously (synchronous_standby_names empty), unless allowVolatile', async () => {
    const refusal = await errorOf(store().open());
    expect(refusal).toMatchObject({ code: 'invalid-config', details: { field: 'allowVolatile', standbys: 1, synchronous_standby_names: '' } });
    expect(refusal!.message).toContain('1 standby streams from this server (pg_stat_replication) but synchronous_standby_names is empty');
    expect(refusal!.message).toContain('Fix: name the standbys a failover may promote in synchronous_standby_names');

    const warnings: string[] = [];
    const volatile = store({ allowVolatile: true, onWarning: (m) => warnings.push(m) });
    await volatile.open();
    expect(warnings).toEqual([expect.stringMatching(/^STARTING WITHOUT DURABLE DECISIONS \(allowVolatile\): .*synchronous_standby_names is empty/)]);
    // Volatile by choice: decisions are written, unreplicated.
    expect((await volatile.decide(decision('tx-volatile'))).outcome).toBe('commit');
  });

  it('refuses a decision once an asynchronous standby attaches after open: nothing is written, the register stays empty', async () => {
    await standby.stop();
    await waitForStandby(false);
    const log = store();
    await log.open();
    expect((await log.decide(decision('tx-before'))).outcome).toBe('commit');

    await standby.startServer();
    await waitForStandby(true);
    const refused = await errorOf(log.decide(decision('tx-after')));
    expect(refused).toMatchObject({ code: 'log-unavailable', details: { operation: 'decide', standbys: 1 } });
    expect(refused!.message).toContain('decide not confirmed: 1 standby streams from this server (pg_stat_replication) but synchronous_standby_names is empty, so no commit waits for it: a failover to one could drop it, so nothing was written');
    expect((await log.get('tx-after'))?.decision).toBeUndefined();
    // The one-phase commit's flush (makeDurable) is refused the same way: its registration could be dropped too.
    await expect(log.makeDurable()).rejects.toMatchObject({ code: 'log-unavailable', details: { operation: 'make durable' } });
  });

  it('with the standby synchronous, a decision counts only once the standby has it; with the standby down it fails and is read back later', async () => {
    await setSynchronousStandbys('standby1');
    const log = store();
    await log.open();
    expect((await log.decide(decision('tx-sync'))).outcome).toBe('commit');
    // synchronous_commit=on waits for the standby's flush: the record is there (replayed a moment later).
    await waitFor('the standby to replay the decision', async () => {
      const query = `SELECT 1 FROM ${schemaOf(log)}.twopc_log_records WHERE tx_id = 'tx-sync' AND kind = 'decision'`;
      const rows = await standby.withClient((c) => c.query(query), DB).then((r) => r.rows, () => []);
      return rows.length === 1;
    });

    // The synchronous standby goes down: PostgreSQL holds every commit until it is back.
    await standby.stop();
    const held = await errorOf(log.decide(decision('tx-held')));
    expect(held).toMatchObject({ code: 'log-unavailable', details: { operation: 'decide' } });
    // Not decided as far as anyone can read: the commit is local only, and invisible until the standby has it.
    const reader = store({ schema: schemaOf(log) });
    await reader.open();
    expect((await reader.get('tx-held'))?.decision).toBeUndefined();

    await standby.startServer();
    await waitFor('the held decision to become visible once the standby has it', async () => (await reader.get('tx-held'))?.decision?.outcome === 'commit');
    expect(await reader.decide(decision('tx-held', 'abort', 'recovery'))).toMatchObject({ outcome: 'commit' });
  });

  it.each(['pg_cancel_backend', 'pg_terminate_backend'])(
    'a commit whose wait for the synchronous standby is cut short (%s) is committed on the primary only, and does not count',
    async (cut) => {
      await setSynchronousStandbys('standby1');
      const log = store({ callTimeoutMs: 1_500 });
      await log.open();
      await standby.stop();
      const txId = `tx-${cut}`;
      const deciding = errorOf(log.decide(decision(txId)));
      const waiting = async () =>
        (
          await primary.withClient((c) =>
            c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'twopc-decision-log' AND wait_event = 'SyncRep'"),
          )
        ).rows;
      await waitFor('the decision to wait for the standby', async () => (await waiting()).length > 0);
      // PostgreSQL then commits it locally: a cancel even reports success (with a WARNING).
      await primary.withClient((c) => c.query(`SELECT ${cut}(pid) FROM pg_stat_activity WHERE application_name = 'twopc-decision-log' AND wait_event = 'SyncRep'`));
      const error = await deciding;
      expect(error).toMatchObject({ code: 'log-unavailable', details: { operation: 'decide' } });
      // On the primary only: a failover now would drop it, so it must not have counted.
      const reader = store({ schema: schemaOf(log) });
      await reader.open();
      await waitFor('the locally committed decision to show on the primary', async () => (await reader.get(txId))?.decision?.outcome === 'commit');

      await standby.startServer();
      await waitForStandby(true);
      expect(await reader.decide(decision(txId, 'abort', 'recovery'))).toMatchObject({ outcome: 'commit' });
    },
  );
});

function schemaOf(log: PostgresDecisionLog): string {
  return /\(schema ([a-z0-9_]+)\)/.exec(log.where)![1];
}

describeIfRedisServer('Redis decision log on a master with a replica', () => {
  let master: RedisServer;
  let replica: RedisServer;
  let namespaces = 0;
  const logs: RedisDecisionLog[] = [];
  const clients: Redis[] = [];

  beforeAll(async () => {
    master = await RedisServer.start({ name: 'failover-master' });
    replica = await RedisServer.start({ name: 'failover-replica', args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const raw = client(master.url);
    const rawReplica = client(replica.url);
    await waitFor('the replica link to be up', async () => /master_link_status:up/.test(await rawReplica.info('replication')));
    // What the log counts (a replica the master reports `state=online`), which can come after the
    // replica's own link is up: a full run once decided while the master still counted none, so the
    // decide waited for no replica and the replica did not have it yet.
    await waitFor('the master to count the replica online', async () => onlineReplicas(await raw.info('replication')) === 1);
  });
  afterEach(async () => {
    if (replica.pid) process.kill(replica.pid, 'SIGCONT');
    for (const log of logs.splice(0)) await log.close().catch(() => undefined);
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await replica?.destroy();
    await master?.destroy();
  });

  function client(url: string): Redis {
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    clients.push(redis);
    return redis;
  }

  function store(namespace: string, options: Partial<RedisDecisionLogOptions> = {}): RedisDecisionLog {
    const log = new RedisDecisionLog({ url: master.url, namespace, retryDeadlineMs: 1_000, callTimeoutMs: 1_000, replicaAckTimeoutMs: 200, ...options });
    logs.push(log);
    return log;
  }

  it('a commit decision counts only once the replica has it: with the replica frozen, the decide fails, and the register is read back once it has it', async () => {
    const namespace = `failover-${process.pid}-${++namespaces}`;
    const log = store(namespace);
    await log.open();
    // Redis 7.0 has no WAITAOF (7.2+): WAIT, the replica has it in memory.
    expect(log.replication).toMatchObject({ ackCommand: 'WAIT' });
    // Another instance, whose own last write the replica will have acknowledged.
    const other = store(namespace);
    await other.open();

    expect((await log.decide(decision('tx-1'))).outcome).toBe('commit');
    // Acknowledged means on the replica already: no waiting here.
    expect(await client(replica.url).get(`{twopc:${namespace}}:decision:tx-1`)).toContain('"outcome":"commit"');

    process.kill(replica.pid!, 'SIGSTOP');
    const unconfirmed = await errorOf(log.decide(decision('tx-2')));
    expect(unconfirmed).toMatchObject({ code: 'log-unavailable', details: { operation: 'decide', replicas: 1, acknowledged: 0, command: 'WAIT' } });
    expect(unconfirmed!.message).toContain('0 of 1 replicas acknowledged it within 200 ms (WAIT)');
    // The master holds it, but nobody may act on it yet: another instance deciding (a sweep, say)
    // reads the winner and must wait for the replica to have it as well (a WAIT measures only the
    // waiting connection's own writes, all acknowledged here), and so must a plain read.
    await expect(other.decide(decision('tx-2', 'abort', 'sweep'))).rejects.toMatchObject({ code: 'log-unavailable', details: { acknowledged: 0 } });
    await expect(other.get('tx-2')).rejects.toMatchObject({ code: 'log-unavailable', details: { operation: 'read' } });

    process.kill(replica.pid!, 'SIGCONT');
    // Not "not decided": the register is read back, and it holds the commit.
    await waitFor('the decision to be readable once the replica has it', async () => (await errorOf(other.get('tx-2'))) === undefined);
    expect((await other.get('tx-2'))?.decision?.outcome).toBe('commit');
    expect(await other.decide(decision('tx-2', 'abort', 'sweep'))).toMatchObject({ outcome: 'commit' });
  });

  it('waits with WAITAOF on Redis 7.2 and later (the replica fsynced it), with WAIT before', () => {
    expect(replicaAckCommand('6.2.14')).toBe('WAIT');
    expect(replicaAckCommand('7.0.15')).toBe('WAIT');
    expect(replicaAckCommand('7.2.0')).toBe('WAITAOF');
    expect(replicaAckCommand('7.4.2')).toBe('WAITAOF');
    expect(replicaAckCommand('8.0.1')).toBe('WAITAOF');
    expect(replicaAckCommand(undefined)).toBe('WAIT');
  });
});
