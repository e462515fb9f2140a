import { PostgresDecisionLog, type PostgresDecisionLogOptions } from '../../coordinator/log/postgres/postgres-decision-log';
import { freePort } from '../../coordinator/demo/free-port';
import { PgCluster } from '../../harness/pg-cluster';
import { TcpProxy } from '../../harness/tcp-proxy';
import { describeDecisionLogConformance } from './conformance';

const DB = 'twopc_log';
let cluster: PgCluster;
let url: string;
let schemas = 0;

beforeAll(async () => {
  cluster = await PgCluster.start({ name: 'pglog' });
  url = await cluster.createDatabase(DB);
});
afterAll(async () => {
  await cluster?.destroy();
});

/** A store on its own schema. The test clusters run with fsync=off (a process crash keeps the page cache), hence allowVolatile. */
function store(schema: string, options: Partial<PostgresDecisionLogOptions> = {}): PostgresDecisionLog {
  return new PostgresDecisionLog({ connectionString: url, schema, allowVolatile: true, onWarning: () => undefined, ...options });
}

function freshSchema(): string {
  return `log_${process.pid}_${++schemas}`;
}

async function dropSchema(schema: string): Promise<void> {
  if (process.env.TWOPC_KEEP_SCHEMAS === '1') return;
  await cluster.withClient((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`), DB);
}

describeDecisionLogConformance(
  'PostgresDecisionLog',
  async () => {
    const schema = freshSchema();
    return {
      create: (s) => store(schema, s),
      destroy: () => dropSchema(schema),
      crash: async () => {
        await cluster.crash();
        await cluster.startServer();
      },
    };
  },
  { sharedBackend: true, crash: true },
);

describe('PostgresDecisionLog', () => {
  const T0 = 1_700_000_000_000;
  const decision = (txId: string, outcome: 'commit' | 'abort' = 'commit') => ({
    txId,
    at: T0,
    outcome,
    source: 'engine' as const,
    branches: [{ branchId: 1, gid: `twopc_${txId.replace(/[^a-z0-9]/g, '')}_1`, participant: 'ledger' }],
  });
  let schema: string;
  const open: PostgresDecisionLog[] = [];
  async function opened(options: Partial<PostgresDecisionLogOptions> = {}, onSchema = schema): Promise<PostgresDecisionLog> {
    const log = store(onSchema, options);
    open.push(log);
    await log.open();
    return log;
  }
  beforeEach(() => {
    schema = freshSchema();
  });
  afterEach(async () => {
    for (const log of open.splice(0)) await log.close().catch(() => undefined);
    await dropSchema(schema);
  });

  it('refuses a server with fsync=off unless allowVolatile, and says how to fix it', async () => {
    const log = store(schema, { allowVolatile: false });
    const error = await log.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'invalid-config', details: { field: 'allowVolatile', fsync: 'off' } });
    expect((error as Error).message).toBe(
      `decision log postgres://postgres@127.0.0.1:${cluster.port}/${DB} (schema ${schema}) is not durable: the server runs with fsync=off, so a commit is not on disk when it returns. ` +
        'A commit decision acknowledged by this server could be lost in a crash, and then its transaction would commit on some databases and roll back on others. ' +
        'Fix: set fsync = on in postgresql.conf and reload; or pass allowVolatile (--allow-volatile) to start without that guarantee.',
    );
    const warnings: string[] = [];
    await opened({ onWarning: (m) => warnings.push(m) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^STARTING WITHOUT DURABLE DECISIONS \(allowVolatile\): decision log .* is not durable: the server runs with fsync=off/);
  });

  it('commits decisions with synchronous_commit=on although the server default is off', async () => {
    const serverDefault = await cluster.withClient((c) => c.query<{ synchronous_commit: string }>('SHOW synchronous_commit'), DB);
    expect(serverDefault.rows[0].synchronous_commit).toBe('off');
    // open() reads the setting back on the store's own connection and refuses anything but on.
    const log = await opened();
    expect((await log.decide(decision('tx-sync'))).outcome).toBe('commit');
  });

  it('group commit: concurrent decisions share one statement and one commit; off, each goes alone', async () => {
    const log = await opened();
    const before = log.writeCounts;
    const winners = await Promise.all(Array.from({ length: 200 }, (_, i) => log.decide(decision(`tx-g-${i}`))));
    expect(winners.every((w) => w.outcome === 'commit')).toBe(true);
    expect(log.writeCounts.batches - before.batches).toBe(1);

    const single = await opened({ groupCommit: false });
    const base = single.writeCounts.batches;
    await Promise.all(Array.from({ length: 20 }, (_, i) => single.decide(decision(`tx-s-${i}`))));
    expect(single.writeCounts.batches - base).toBe(20);
  });

  it('migrates once when several coordinators start together, and refuses a newer layout', async () => {
    await Promise.all([opened(), opened(), opened()]);
    const rows = await cluster.withClient((c) => c.query(`SELECT version FROM ${schema}.twopc_log_migrations`), DB);
    expect(rows.rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }]);
    await cluster.withClient((c) => c.query(`INSERT INTO ${schema}.twopc_log_migrations (version, name) VALUES (99, 'from the future')`), DB);
    await expect(opened()).rejects.toMatchObject({ code: 'invalid-config', message: expect.stringContaining('is at layout version 99, but this twopc knows versions up to 3') });
  });

  it('fails to open with log-unavailable, naming the database, when nothing answers', async () => {
    const port = await freePort();
    const log = new PostgresDecisionLog({ connectionString: `postgres://postgres:secret@127.0.0.1:${port}/nowhere`, retryDeadlineMs: 200 });
    await expect(log.open()).rejects.toMatchObject({
      code: 'log-unavailable',
      message: expect.stringMatching(new RegExp(`^decision log postgres://postgres@127\\.0\\.0\\.1:${port}/nowhere \\(schema twopc\\): open failed \\(tried (once|\\d+ times)\\): .*ECONNREFUSED`)),
    });
    await expect(log.decide(decision('tx-x'))).rejects.toMatchObject({ code: 'log-unavailable', message: expect.stringContaining('is closed') });
  });

  it('fails with log-unavailable while the server is down past the retry deadline, and works again once it is back', async () => {
    const log = await opened({ retryDeadlineMs: 300 });
    await log.decide(decision('tx-before'));
    await cluster.crash();
    try {
      await expect(log.decide(decision('tx-down'))).rejects.toMatchObject({ code: 'log-unavailable', message: expect.stringContaining('decide failed') });
      await expect(log.get('tx-before')).rejects.toMatchObject({ code: 'log-unavailable' });
    } finally {
      await cluster.startServer();
    }
    // Nothing is kept in memory to disagree with the database: the store needs no reopen.
    expect((await log.get('tx-before'))!.decision!.outcome).toBe('commit');
    expect((await log.decide(decision('tx-down', 'abort'))).outcome).toBe('abort');
  });
});

describe('PostgresDecisionLog through a connection that loses a message', () => {
  let proxy: TcpProxy;
  let schema: string;
  let log: PostgresDecisionLog;
  beforeEach(async () => {
    schema = freshSchema();
    proxy = await TcpProxy.start(cluster.port);
    log = store(schema, { connectionString: proxy.url(url, cluster.port) });
    await log.open();
    // Warm both pools, so the next message lost is a statement, not a connection's start-up.
    await log.append({ type: 'begin', txId: 'tx-warm', at: 1, expiresAt: 2 });
    await log.decide({ txId: 'tx-warm', at: 1, outcome: 'abort', source: 'engine', branches: [] });
  });
  afterEach(async () => {
    await log.close();
    await proxy.close();
    await dropSchema(schema);
  });

  it('a decision whose answer was lost is run again and returns the winner, stored once', async () => {
    const lost = proxy.loseNext('reply');
    const d = await log.decide({ txId: 'tx-lost', at: 1, outcome: 'commit', source: 'engine', branches: [] });
    await lost;
    expect(d.outcome).toBe('commit');
    expect((await log.history('tx-lost')).map((r) => r.type)).toEqual(['decision']);
    expect(await log.decide({ txId: 'tx-lost', at: 2, outcome: 'abort', source: 'sweep', branches: [] })).toEqual(d);
  });

  it('an append whose answer was lost is found by its op id, not sent twice', async () => {
    const lost = proxy.loseNext('reply');
    await log.append({ type: 'begin', txId: 'tx-a', at: 1, expiresAt: 2 });
    await lost;
    expect((await log.history('tx-a')).map((r) => r.type)).toEqual(['begin']);
  });

  it('an append that never reached the server fails with log-unavailable instead of being resent', async () => {
    const lost = proxy.loseNext('request');
    await expect(log.append({ type: 'begin', txId: 'tx-b', at: 1, expiresAt: 2 })).rejects.toMatchObject({
      code: 'log-unavailable',
      message: expect.stringContaining('not retried, so they are never stored twice'),
    });
    await lost;
    expect(await log.history('tx-b')).toEqual([]);
    await log.append({ type: 'begin', txId: 'tx-b', at: 3, expiresAt: 4 });
    expect((await log.history('tx-b')).map((r) => r.at)).toEqual([3]);
  });
});
