import Redis from 'ioredis';
import type { DecisionRecord } from '../../coordinator/engine/ports/decision-log';
import { RedisDecisionLog, type RedisDecisionLogOptions } from '../../coordinator/log/redis/redis-decision-log';
import { onlineReplicas } from '../../coordinator/log/redis/redis-replicas';
import { RedisServer, describeIfRedisServer } from '../../harness/redis-server';

/**
 * Review L4: the Redis store waited for its replicas (WAIT / WAITAOF) on its
 * only connection. A WAIT blocks its connection, so while a decision waited
 * for a slow or frozen replica, every other call — lease renewals too —
 * queued behind it, for up to `replicaAckTimeoutMs` per wait: renewals
 * starved and instances fenced themselves. And it counted the replicas by
 * `connected_slaves`, which includes a replica still in its full resync: one
 * that acknowledges nothing until it is done, so every decision failed for
 * the whole resync.
 *
 * The waits now block a connection of their own (after the caller's write
 * was answered, so the fence write they measure follows it), and only
 * replicas whose state is `online` are counted.
 */

const decision = (txId: string): Omit<DecisionRecord, 'type'> => ({
  txId,
  at: 1_700_000_000_000,
  outcome: 'commit',
  source: 'engine',
  branches: [{ branchId: 1, gid: `twopc_${txId.replace(/[^a-z0-9]/g, '')}_1`, participant: 'ledger' }],
});

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeIfRedisServer('Redis decision log: waits for replicas', () => {
  const servers: RedisServer[] = [];
  const clients: Redis[] = [];
  const logs: RedisDecisionLog[] = [];
  const frozen: number[] = [];

  afterEach(async () => {
    for (const pid of frozen.splice(0)) process.kill(pid, 'SIGCONT');
    for (const log of logs.splice(0)) await log.close().catch(() => undefined);
    for (const c of clients.splice(0)) c.disconnect();
    for (const s of servers.splice(0).reverse()) await s.destroy();
  });

  async function server(name: string, args: string[] = []): Promise<RedisServer> {
    const s = await RedisServer.start({ name, args });
    servers.push(s);
    return s;
  }

  function client(url: string): Redis {
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    clients.push(redis);
    return redis;
  }

  function store(url: string, options: Partial<RedisDecisionLogOptions> = {}): RedisDecisionLog {
    const log = new RedisDecisionLog({ url, namespace: 'waits', retryDeadlineMs: 1_000, ...options });
    logs.push(log);
    return log;
  }

  it("a decision waiting for a frozen replica holds back no other call: the lease is renewed meanwhile", async () => {
    const master = await server('waits-master');
    const replica = await server('waits-replica', ['--replicaof', '127.0.0.1', String(master.port)]);
    const raw = client(master.url);
    await waitFor('the replica to be online', async () => onlineReplicas(await raw.info('replication')) === 1);
    // Long enough that nothing here ends the wait but the replica's answer.
    const log = store(master.url, { callTimeoutMs: 30_000, replicaAckTimeoutMs: 10_000 });
    await log.open();
    const lease = await log.leases.register('waits', 'http://127.0.0.1:9', 60_000);

    process.kill(replica.pid!, 'SIGSTOP');
    frozen.push(replica.pid!);
    let decided = false;
    const deciding = log.decide(decision('tx-1')).finally(() => {
      decided = true;
    });
    const waiting = async () => String(await raw.call('CLIENT', 'LIST')).split('\n').filter((line: string) => /\bcmd=(wait|waitaof)\b/.test(line)).length;
    await waitFor('the decision to wait for the replica', async () => (await waiting()) > 0);

    // On the store's connection, while the wait is blocked.
    expect(await log.leases.renew(lease.token, 60_000)).toBe(true);
    expect(await log.get('tx-unrelated')).toBeUndefined();
    expect({ decided, waiting: await waiting() }).toEqual({ decided: false, waiting: 1 });

    process.kill(replica.pid!, 'SIGCONT');
    frozen.splice(0);
    expect((await deciding).outcome).toBe('commit');
  });

  it('a replica still in its full resync is not waited for: it acknowledges nothing until done', async () => {
    // Diskless sync with a long delay: a replica that attaches waits in wait_bgsave for its snapshot.
    const master = await server('resync-master', ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '60']);
    const raw = client(master.url);
    const log = store(master.url, { callTimeoutMs: 5_000, replicaAckTimeoutMs: 1_000 });
    await log.open();
    await server('resync-replica', ['--replicaof', '127.0.0.1', String(master.port)]);
    await waitFor('the replica to wait for its snapshot', async () => /^slave0:.*state=wait_bgsave/m.test(await raw.info('replication')));

    const decided = await log.decide(decision('tx-2')).then(
      (d) => d.outcome,
      (e: Error) => e.message,
    );
    expect(decided).toBe('commit');
    expect(log.replication?.replicas).toBe(0);
  });

  it('counts the replicas whose state is online, from INFO replication', () => {
    const info = [
      '# Replication',
      'role:master',
      'connected_slaves:3',
      'slave0:ip=10.0.0.1,port=6379,state=online,offset=1234,lag=0',
      'slave1:ip=10.0.0.2,port=6379,state=wait_bgsave,offset=0,lag=0',
      'slave2:ip=10.0.0.3,port=6379,state=send_bulk,offset=0,lag=0',
      'master_failover_state:no-failover',
      '',
    ].join('\r\n');
    expect(onlineReplicas(info)).toBe(1);
    expect(onlineReplicas('# Replication\r\nrole:master\r\nconnected_slaves:0\r\n')).toBe(0);
  });
});
