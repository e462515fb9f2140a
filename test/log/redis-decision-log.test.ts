import net from 'node:net';
import Redis from 'ioredis';
import type { DecisionRecord } from '../../coordinator/engine/ports/decision-log';
import { RedisDecisionLog, type RedisDecisionLogOptions } from '../../coordinator/log/redis/redis-decision-log';
import { freePort } from '../../coordinator/demo/free-port';
import { RedisServer, describeIfRedis, describeIfRedisServer } from '../../harness/redis-server';
import { TcpProxy } from '../../harness/tcp-proxy';
import { describeDecisionLogConformance } from './conformance';

const T0 = 1_700_000_000_000;
let namespaces = 0;
const freshNamespace = () => `t${process.pid}-${++namespaces}`;
const decision = (txId: string, outcome: 'commit' | 'abort' = 'commit'): Omit<DecisionRecord, 'type'> => ({
  txId,
  at: T0,
  outcome,
  source: 'engine',
  branches: [{ branchId: 1, gid: `twopc_${txId.replace(/[^a-z0-9]/g, '')}_1`, participant: 'ledger' }],
});

/** A plain client, for looking at what the store wrote. */
async function rawClient(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  await redis.connect();
  return redis;
}

/** Deletes every key of a namespace (all under one hash tag). */
async function dropNamespace(url: string, namespace: string): Promise<void> {
  const redis = await rawClient(url);
  try {
    const keys = await redis.keys(`{twopc:${namespace}}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

async function errorOf(p: Promise<unknown>): Promise<(Error & { code?: string; details?: Record<string, unknown> }) | undefined> {
  return p.then(
    () => undefined,
    (e: Error) => e,
  );
}

/** Whether something answers on 127.0.0.1:6379 (the machine's own Redis, if any). */
function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(500, () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(false));
    s.on('connect', () => (s.destroy(), resolve(true)));
  });
}

// The contract, on a throwaway redis-server (which the crash test kills), or
// on REDIS_URL when there is no redis-server binary (no crash test then).
describeIfRedis('RedisDecisionLog conformance', ({ bin, url: envUrl }) => {
  let server: RedisServer | undefined;
  let url: string;
  beforeAll(async () => {
    if (bin) server = await RedisServer.start({ name: 'redislog' });
    url = server?.url ?? envUrl!;
  });
  afterAll(async () => {
    await server?.destroy();
  });

  describeDecisionLogConformance(
    'RedisDecisionLog',
    async () => {
      const namespace = freshNamespace();
      return {
        // REDIS_URL is whatever the developer runs: it may well lack appendfsync always.
        create: (s) => new RedisDecisionLog({ url, namespace, allowVolatile: !server, onWarning: () => undefined, ...s }),
        destroy: () => dropNamespace(url, namespace),
        crash: () => server!.restart(),
      };
    },
    { sharedBackend: true, crash: !!bin },
  );
});

describeIfRedisServer('RedisDecisionLog on a redis-server it can kill', () => {
  let server: RedisServer;
  const open: RedisDecisionLog[] = [];
  beforeAll(async () => {
    server = await RedisServer.start({ name: 'redislog-kill' });
  });
  afterAll(async () => {
    await server?.destroy();
  });
  afterEach(async () => {
    for (const log of open.splice(0)) await log.close().catch(() => undefined);
  });
  async function opened(options: Partial<RedisDecisionLogOptions> & { namespace: string }): Promise<RedisDecisionLog> {
    const log = new RedisDecisionLog({ url: server.url, ...options });
    open.push(log);
    await log.open();
    return log;
  }

  it('loses no acknowledged decision when redis-server is SIGKILLed mid-stream and restarted on its AOF', async () => {
    const namespace = freshNamespace();
    const log = await opened({ namespace });
    const acked = new Map<string, DecisionRecord>();
    const failures: unknown[] = [];
    let stop = false;
    let killedAt = -1;
    const workers = Array.from({ length: 128 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const tx = `tx-${w}-${i}`;
        try {
          acked.set(tx, await log.decide(decision(tx, i % 4 === 0 ? 'abort' : 'commit')));
        } catch (e) {
          failures.push(e);
        }
      }
    });
    const until = async (cond: () => boolean) => {
      const deadline = Date.now() + 30_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out (${acked.size} acknowledged, ${failures.length} failed)`);
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    try {
      await until(() => acked.size >= 2000);
      killedAt = acked.size;
      await server.kill();
      // Acknowledgements that raced the kill were answered before it: still part of the check below.
      await server.startServer();
      await until(() => acked.size >= killedAt + 2000);
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    expect(failures).toEqual([]);
    // Read back by a fresh client through the register's own keys, not the store that wrote them.
    const raw = await rawClient(server.url);
    try {
      const txs = [...acked.keys()];
      const stored = await raw.mget(...txs.map((tx) => `{twopc:${namespace}}:decision:${tx}`));
      const lost = txs.filter((tx, i) => stored[i] === null || JSON.parse(stored[i]!).outcome !== acked.get(tx)!.outcome);
      expect(lost).toEqual([]);
    } finally {
      raw.disconnect();
    }
    const again = await opened({ namespace });
    const unfinished = new Map((await again.unfinished()).map((s) => [s.txId, s.decision]));
    for (const [tx, d] of acked) expect(unfinished.get(tx)).toEqual(d);
  });

  it('fails to open with log-unavailable, naming the server, when nothing answers', async () => {
    const port = await freePort();
    const log = new RedisDecisionLog({ url: `redis://:secret@127.0.0.1:${port}`, namespace: 'nowhere', retryDeadlineMs: 200 });
    await expect(log.open()).rejects.toMatchObject({
      code: 'log-unavailable',
      message: expect.stringMatching(new RegExp(`^decision log redis://127\\.0\\.0\\.1:${port} \\(namespace nowhere\\): open failed \\(tried (once|\\d+ times)\\): .*last connection error: connect ECONNREFUSED`)),
    });
  });

  it('fails with log-unavailable while the server is down past the retry deadline, and works again once it is back', async () => {
    const log = await opened({ namespace: freshNamespace(), retryDeadlineMs: 300 });
    await log.decide(decision('tx-before'));
    await server.kill();
    try {
      await expect(log.decide(decision('tx-down'))).rejects.toMatchObject({ code: 'log-unavailable', message: expect.stringContaining('decide failed') });
    } finally {
      await server.startServer();
    }
    expect((await log.get('tx-before'))!.decision!.outcome).toBe('commit');
    // The failed decide may or may not have run: the register answers either way.
    const d = await log.decide(decision('tx-down', 'abort'));
    expect(await log.decide(decision('tx-down', 'commit'))).toEqual(d);
  });

  it('group commit: concurrent writes go in one script call; off, each goes alone', async () => {
    const log = await opened({ namespace: freshNamespace() });
    const before = log.writeCounts.batches;
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.decide(decision(`tx-g-${i}`))));
    expect(log.writeCounts.batches - before).toBe(1);
    const single = await opened({ namespace: freshNamespace(), groupCommit: false });
    const base = single.writeCounts.batches;
    await Promise.all(Array.from({ length: 20 }, (_, i) => single.decide(decision(`tx-s-${i}`))));
    expect(single.writeCounts.batches - base).toBe(20);
  });

  it('keeps every key of a store in one hash slot: the {twopc:<namespace>} tag', async () => {
    const namespace = freshNamespace();
    const log = await opened({ namespace });
    await log.append({ type: 'begin', txId: 'tx-1', at: T0, expiresAt: T0 + 1 });
    await log.decide(decision('tx-1'));
    await log.append({ type: 'complete', txId: 'tx-2', at: T0 });
    const raw = await rawClient(server.url);
    try {
      const keys = await raw.keys(`*${namespace}*`);
      expect(keys.length).toBeGreaterThanOrEqual(6);
      // Redis hashes only what is inside the first {...} of a key: the same tag, the same slot.
      for (const key of keys) expect(/^[^{]*\{([^}]*)\}/.exec(key)?.[1]).toBe(`twopc:${namespace}`);
    } finally {
      raw.disconnect();
    }
  });

  describe('through a connection that loses an answer (ioredis resends the command)', () => {
    let proxy: TcpProxy;
    beforeEach(async () => {
      proxy = await TcpProxy.start(server.port);
    });
    afterEach(async () => {
      for (const log of open.splice(0)) await log.close().catch(() => undefined);
      await proxy.close();
    });

    it('a resent decision returns the same winner and stores one decision', async () => {
      const log = new RedisDecisionLog({ url: proxy.url(server.url, server.port), namespace: freshNamespace() });
      open.push(log);
      await log.open();
      const lost = proxy.loseNext('reply');
      const d = await log.decide(decision('tx-r'));
      await lost;
      expect(d.outcome).toBe('commit');
      expect((await log.history('tx-r')).map((r) => r.type)).toEqual(['decision']);
      expect(await log.decide(decision('tx-r', 'abort'))).toEqual(d);
    });

    it('a resent append is stored once', async () => {
      const log = new RedisDecisionLog({ url: proxy.url(server.url, server.port), namespace: freshNamespace() });
      open.push(log);
      await log.open();
      await log.append({ type: 'begin', txId: 'tx-r', at: T0, expiresAt: T0 + 1 });
      const lost = proxy.loseNext('reply');
      await log.append({ type: 'enlist', txId: 'tx-r', at: T0, branch: { branchId: 1, gid: 'twopc_r_1', participant: 'ledger' } });
      await lost;
      expect((await log.history('tx-r')).map((r) => r.type)).toEqual(['begin', 'enlist']);
      expect((await log.compact()).kept).toBe(1);
    });
  });
});

describeIfRedisServer('RedisDecisionLog refuses a Redis that would lose acknowledged decisions', () => {
  const servers: RedisServer[] = [];
  const logs: RedisDecisionLog[] = [];
  afterEach(async () => {
    for (const log of logs.splice(0)) await log.close().catch(() => undefined);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.destroy()));
  });
  async function serverWith(options: Parameters<typeof RedisServer.start>[0]): Promise<RedisServer> {
    const server = await RedisServer.start({ name: 'redislog-volatile', ...options });
    servers.push(server);
    return server;
  }
  function refusalOf(url: string, options: Partial<RedisDecisionLogOptions> = {}) {
    const log = new RedisDecisionLog({ url, namespace: 'refusal', ...options });
    logs.push(log);
    return errorOf(log.open());
  }
  const consequence =
    'A commit decision acknowledged by this server could be lost in a crash, and then its transaction would commit on some databases and roll back on others.';
  const fixAof =
    'Fix: set appendonly yes and appendfsync always (in redis.conf, or CONFIG SET appendonly yes, CONFIG SET appendfsync always, then CONFIG REWRITE); ' +
    'or pass allowVolatile (--allow-volatile) to start without that guarantee.';

  it('refuses appendonly no, with the exact message', async () => {
    const server = await serverWith({ appendonly: false });
    const error = await refusalOf(server.url);
    expect(error).toMatchObject({ code: 'invalid-config', details: { field: 'allowVolatile', source: 'CONFIG GET', appendonly: 'no', appendfsync: 'always' } });
    expect(error!.message).toBe(`decision log redis://127.0.0.1:${server.port} (namespace refusal) is not durable: CONFIG GET shows appendonly no, appendfsync always. ${consequence} ${fixAof}`);
  });

  it('refuses appendfsync everysec', async () => {
    const server = await serverWith({ appendfsync: 'everysec' });
    const error = await refusalOf(server.url);
    expect(error?.code).toBe('invalid-config');
    expect(error!.message).toContain('is not durable: CONFIG GET shows appendonly yes, appendfsync everysec.');
  });

  it('refuses no-appendfsync-on-rewrite yes', async () => {
    const server = await serverWith({ args: ['--no-appendfsync-on-rewrite', 'yes'] });
    const error = await refusalOf(server.url);
    expect(error!.message).toContain('CONFIG GET shows no-appendfsync-on-rewrite yes (no fsync while the AOF is rewritten)');
  });

  it('without CONFIG, falls back to INFO persistence: proves no AOF, cannot prove appendfsync always', async () => {
    const noAof = await serverWith({ appendonly: false, args: ['--rename-command', 'CONFIG', ''] });
    const withoutAof = await refusalOf(noAof.url);
    expect(withoutAof).toMatchObject({ code: 'invalid-config', details: { source: 'INFO persistence', aofEnabled: '0' } });
    expect(withoutAof!.message).toContain("is not durable: CONFIG GET is not available (ERR unknown command 'config'), and INFO persistence shows aof_enabled:0: no append-only file.");

    const aof = await serverWith({ args: ['--rename-command', 'CONFIG', ''] });
    const unverifiable = await refusalOf(aof.url);
    expect(unverifiable).toMatchObject({ code: 'invalid-config', details: { source: 'INFO persistence', aofEnabled: '1' } });
    expect(unverifiable!.message).toContain('INFO persistence shows aof_enabled:1, but INFO does not report the fsync policy, so appendfsync always cannot be verified.');
    expect(unverifiable!.message).toContain('Fix: make sure the server runs with appendfsync always, and let this user run CONFIG GET (ACL: +config|get)');
  });

  it('refuses a replica', async () => {
    const master = await serverWith({});
    const replica = await serverWith({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const error = await refusalOf(replica.url);
    expect(error!.message).toContain('is not durable: the server is a replica (INFO replication shows role:slave). ');
    expect(error!.message).toContain('Fix: connect to the master;');
  });

  it('starts anyway with allowVolatile, with a loud warning', async () => {
    const server = await serverWith({ appendonly: false });
    const warnings: string[] = [];
    const log = new RedisDecisionLog({ url: server.url, namespace: 'volatile', allowVolatile: true, onWarning: (m) => warnings.push(m) });
    logs.push(log);
    await log.open();
    expect(warnings).toEqual([
      `STARTING WITHOUT DURABLE DECISIONS (allowVolatile): decision log redis://127.0.0.1:${server.port} (namespace volatile) is not durable: CONFIG GET shows appendonly no, appendfsync always. ${consequence} Use this for development only.`,
    ]);
    expect((await log.decide(decision('tx-v'))).outcome).toBe('commit');
  });

  it("refuses the machine's own Redis on 127.0.0.1:6379 if it has no durable AOF (skipped when nothing listens there)", async () => {
    if (!(await reachable(6379))) return;
    const url = 'redis://127.0.0.1:6379';
    const raw = await rawClient(url);
    let durable: boolean;
    try {
      const [, appendonly] = (await raw.config('GET', 'appendonly')) as unknown as string[];
      const [, appendfsync] = (await raw.config('GET', 'appendfsync')) as unknown as string[];
      durable = appendonly === 'yes' && appendfsync === 'always';
    } catch {
      durable = false;
    } finally {
      raw.disconnect();
    }
    const error = await refusalOf(url, { namespace: `probe-${process.pid}` });
    if (durable) expect(error).toBeUndefined();
    else expect(error).toMatchObject({ code: 'invalid-config', message: expect.stringMatching(/^decision log redis:\/\/127\.0\.0\.1:6379 \(namespace probe-\d+\) is not durable: /) });
  });
});
