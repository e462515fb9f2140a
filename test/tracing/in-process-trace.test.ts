import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import type { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { Coordinator } from '../../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { PostgresParticipant } from '../../coordinator/participants/postgres/postgres-participant';
import { TwopcError } from '../../coordinator/engine/ports/protocol';
import { PgCluster } from '../../harness/pg-cluster';
import { records, startTracing, type SpanRecord } from './span-recorder';

// The in-process coordinator's trace of a transaction, and recovery's: the engine's spans with
// the in-memory exporter, on real PostgreSQL.
let exporter: InMemorySpanExporter;
let cluster: PgCluster;
let logDir: string;
const pools: Pool[] = [];

beforeAll(async () => {
  exporter = startTracing();
  cluster = await PgCluster.start({ name: 'in-process-trace', maxPreparedTransactions: 10 });
  for (const name of ['trace_a', 'trace_b']) {
    await cluster.createDatabase(name);
    const pool = new Pool({ ...cluster.connectionConfig(name), max: 4 });
    await pool.query('create table items (id int primary key)');
    pools.push(pool);
  }
  logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-trace-log-'));
}, 120_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await cluster?.destroy();
  fs.rmSync(logDir, { recursive: true, force: true });
});

const participants = () => pools.map((pool, i) => new PostgresParticipant({ name: `trace_${'ab'[i]}`, pool }));

async function withCoordinator<T>(databases: PostgresParticipant[], fn: (c: Coordinator) => Promise<T>): Promise<T> {
  await Promise.all(databases.map((d) => d.start()));
  const coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: logDir }), databases, engine: { sweepIntervalMs: 0, commitWaitMs: 200 } });
  try {
    return await fn(coordinator);
  } finally {
    await coordinator.close();
    await Promise.all(databases.map((d) => d.close()));
  }
}

function spanTree(spans: SpanRecord[], root: SpanRecord): string[] {
  const byParent = (id: string) => spans.filter((s) => s.parentSpanId === id && s.traceId === root.traceId);
  const walk = (s: SpanRecord, depth: number): string[] => [
    `${'  '.repeat(depth)}${s.name}`,
    ...byParent(s.spanId)
      .sort((x, y) => x.name.localeCompare(y.name))
      .flatMap((c) => walk(c, depth + 1)),
  ];
  return walk(root, 0);
}

describe('in-process tracing', () => {
  it('one trace per transaction: begin, each enlist, commit with each prepare, the decision and each phase 2', async () => {
    exporter.reset();
    await withCoordinator(participants(), (c) =>
      c.transaction(async (tx) => {
        await tx.db('trace_a').query('insert into items values (1)');
        await tx.db('trace_b').query('insert into items values (1)');
      }),
    );
    const spans = records(exporter, 'app');
    const root = spans.find((s) => s.name === 'twopc.transaction')!;
    expect(spanTree(spans, root).join('\n')).toBe(
      [
        'twopc.transaction',
        '  twopc.begin',
        '  twopc.commit',
        '    twopc.decide',
        '    twopc.phase2.commit',
        '    twopc.phase2.commit',
        '    twopc.prepare',
        '    twopc.prepare',
        '  twopc.enlist',
        '  twopc.enlist',
      ].join('\n'),
    );
    const txId = spans.find((s) => s.name === 'twopc.begin')!.attributes['twopc.transaction.id'];
    const prepares = spans.filter((s) => s.name === 'twopc.prepare');
    expect(prepares.map((s) => [s.attributes['twopc.transaction.id'], s.attributes['twopc.participant'], s.attributes['twopc.vote']]).sort()).toEqual([
      [txId, 'trace_a', 'yes'],
      [txId, 'trace_b', 'yes'],
    ]);
    expect(prepares.map((s) => s.attributes['twopc.branch.gid'])).toEqual(expect.arrayContaining([expect.stringMatching(/^twopc_[0-9a-f]{32}_\d+$/)]));
  }, 120_000);

  it("recovery's work is a span: phase 2 of a transaction its last run could not finish", async () => {
    // Phase 2 cannot reach trace_b: the transaction is decided, its branch on trace_b stays prepared.
    const [a, b] = participants();
    const unreachable = new Proxy(b, {
      get: (t, prop) => (prop === 'commit' ? () => Promise.reject(new TwopcError('participant-unavailable', 'trace_b is down')) : typeof Reflect.get(t, prop) === 'function' ? Reflect.get(t, prop).bind(t) : Reflect.get(t, prop)),
    });
    const txId = await withCoordinator([a, unreachable], async (c) => {
      let id = '';
      await c.transaction(async (tx) => {
        id = tx.id;
        await tx.db('trace_a').query('insert into items values (2)');
        await tx.db('trace_b').query('insert into items values (2)');
      });
      return id;
    });
    expect(await cluster.preparedGids('twopc')).toHaveLength(1);

    exporter.reset();
    await withCoordinator(participants(), async () => undefined);
    expect(await cluster.preparedGids('twopc')).toEqual([]);
    const spans = records(exporter, 'app');
    const recovery = spans.find((s) => s.name === 'twopc.recovery')!;
    const finished = spans.filter((s) => s.name === 'twopc.phase2.commit' && s.attributes['twopc.transaction.id'] === txId);
    // Every branch of the decision is committed again (trace_a's second COMMIT PREPARED finds it done).
    expect(finished.map((s) => [s.traceId, s.parentSpanId, s.attributes['twopc.participant']]).sort()).toEqual([
      [recovery.traceId, recovery.spanId, 'trace_a'],
      [recovery.traceId, recovery.spanId, 'trace_b'],
    ]);
  }, 120_000);
});
