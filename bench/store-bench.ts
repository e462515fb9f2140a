// Forced (commit) decisions per second on each decision log store, group
// commit against one-at-a-time, in one run: a durable PostgreSQL cluster
// (fsync on, synchronous_commit on), a redis-server with appendonly yes +
// appendfsync always, and a temp dir for the file store, all started here.
// Every (store, mode) runs once per round on a fresh, empty log, rounds
// rotate the order (this machine is noisy: a slow spell hits every mode), and
// each worker loops `await log.decide(commit)` on a new transaction id.
//
//   npx tsx bench/store-bench.ts [--seconds 3] [--warmup 1] [--concurrency 256] [--rounds 3] [--stores file,postgres,redis]
//
// Progress goes to stderr; the table, then one JSON line (last), to stdout.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { v7 as uuidv7 } from 'uuid';
import type { DecisionLog } from '../coordinator/engine/ports/decision-log';
import { FileDecisionLog } from '../coordinator/log/file/file-decision-log';
import { nodeLogFs } from '../coordinator/log/file/log-fs';
import { PostgresDecisionLog } from '../coordinator/log/postgres/postgres-decision-log';
import { RedisDecisionLog } from '../coordinator/log/redis/redis-decision-log';
import { PgCluster } from '../harness/pg-cluster';
import { RedisServer } from '../harness/redis-server';
import { Cleanup } from './cleanup';
import { LatencyRecorder } from './latency-recorder';
import { startReaper } from './reaper';

const STORES = ['file', 'postgres', 'redis'] as const;
type Store = (typeof STORES)[number];
type Mode = 'group' | 'single';

/** Targets on the 2-core VM, for group commit at concurrency 256. */
const TARGETS: Record<Store, number> = { file: 50_000, postgres: 10_000, redis: 20_000 };

interface Options {
  seconds: number;
  warmup: number;
  concurrency: number;
  rounds: number;
  stores: Store[];
}

/** One measured run. `flushes`: fdatasyncs (file) or batches, i.e. statements / script calls (PostgreSQL, Redis). */
interface Run {
  perSecond: number;
  decisions: number;
  flushes: number;
  cpuMicros: number;
  latencies: LatencyRecorder;
}

/** A fresh empty log of one store, and how many flushes it has done so far. */
interface Opened {
  log: DecisionLog;
  flushes: () => number;
  dispose: () => Promise<void>;
}

function parseOptions(argv: string[]): Options {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i === -1 ? undefined : argv[i + 1];
  };
  const num = (name: string, fallback: number, min: number): number => {
    const raw = value(name);
    const v = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(v) || v < min) throw new Error(`--${name} must be a number >= ${min}`);
    return v;
  };
  const stores = (value('stores') ?? STORES.join(',')).split(',').map((s) => s.trim());
  for (const s of stores) if (!(STORES as readonly string[]).includes(s)) throw new Error(`--stores takes ${STORES.join(', ')} (got ${s})`);
  return { seconds: num('seconds', 3, 0.1), warmup: num('warmup', 1, 0), concurrency: Math.floor(num('concurrency', 256, 1)), rounds: Math.floor(num('rounds', 3, 1)), stores: stores as Store[] };
}

class Backends {
  private runs = 0;
  private constructor(
    readonly tempRoot: string,
    readonly pg?: { cluster: PgCluster; url: string },
    readonly redis?: RedisServer,
  ) {}

  static async start(stores: Store[], cleanup: Cleanup, progress: (line: string) => void): Promise<Backends> {
    const tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-store-bench-'));
    cleanup.add('remove temp dir', () => fs.rmSync(tempRoot, { recursive: true, force: true }));
    let pg: { cluster: PgCluster; url: string } | undefined;
    let redis: RedisServer | undefined;
    if (stores.includes('postgres')) {
      progress('starting a durable PostgreSQL cluster (fsync on, synchronous_commit on)…');
      const cluster = await PgCluster.start({ name: 'store-bench', durable: true, maxConnections: 60 });
      cleanup.add('stop PostgreSQL', () => cluster.destroy());
      // If this process is killed outright, the reaper still stops the cluster.
      startReaper({ dataDirs: [cluster.dataDir], dirs: [cluster.dir, tempRoot] }, false);
      pg = { cluster, url: await cluster.createDatabase('store_bench') };
    }
    if (stores.includes('redis')) {
      progress('starting redis-server (appendonly yes, appendfsync always)…');
      redis = await RedisServer.start({ name: 'store-bench' });
      cleanup.add('stop redis-server', () => redis!.destroy());
    }
    return new Backends(tempRoot, pg, redis);
  }

  resetRedis(): Promise<void> {
    return resetRedisServer(this.redis!.url);
  }

  async open(store: Store, mode: Mode): Promise<Opened> {
    const n = ++this.runs;
    const groupCommit = mode === 'group';
    switch (store) {
      case 'file': {
        const dir = path.join(this.tempRoot, `file-${n}`);
        const base = nodeLogFs();
        let syncs = 0;
        const log = new FileDecisionLog({ dir, groupCommit, fs: { ...base, fdatasync: (fd) => (syncs++, base.fdatasync(fd)) } });
        await log.open();
        return { log, flushes: () => syncs, dispose: async () => fs.rmSync(dir, { recursive: true, force: true }) };
      }
      case 'postgres': {
        const schema = `bench_${n}`;
        const log = new PostgresDecisionLog({ connectionString: this.pg!.url, schema, groupCommit });
        await log.open();
        // As `twopc serve` runs on a shared store: under a lease, so every write batch carries its fencing token.
        await log.leases.register('store-bench', 'http://127.0.0.1:1', 600_000);
        const drop = () => this.pg!.cluster.withClient((c) => c.query(`DROP SCHEMA ${schema} CASCADE`), 'store_bench').then(() => undefined);
        return { log, flushes: () => log.writeCounts.batches, dispose: drop };
      }
      case 'redis': {
        const namespace = `bench-${n}`;
        const log = new RedisDecisionLog({ url: this.redis!.url, namespace, groupCommit });
        await log.open();
        await log.leases.register('store-bench', 'http://127.0.0.1:1', 600_000);
        return { log, flushes: () => log.writeCounts.batches, dispose: () => this.resetRedis() };
      }
    }
  }
}

/**
 * Empties the server and rewrites its AOF, so every run starts on a small
 * file and none pays for an automatic rewrite of the runs before it.
 */
async function resetRedisServer(url: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    await redis.flushall();
    await redis.bgrewriteaof();
    for (;;) {
      const info = await redis.info('persistence');
      if (/aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    redis.disconnect();
  }
}

async function measure(log: DecisionLog, flushes: () => number, seconds: number, concurrency: number, record: boolean): Promise<Run> {
  const latencies = new LatencyRecorder();
  let decisions = 0;
  const flushes0 = flushes();
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const txId = uuidv7();
      const gid = txId.replace(/-/g, '');
      const t0 = performance.now();
      await log.decide({
        txId,
        at: Date.now(),
        outcome: 'commit',
        source: 'engine',
        branches: [
          { branchId: 1, gid: `twopc_${gid}_1`, participant: 'ledger_a' },
          { branchId: 2, gid: `twopc_${gid}_2`, participant: 'ledger_b' },
        ],
      });
      if (record) latencies.add(performance.now() - t0);
      decisions++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: decisions / elapsed, decisions, flushes: flushes() - flushes0, cpuMicros: (cpu.user + cpu.system) / Math.max(1, decisions), latencies };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv);
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  const cleanup = new Cleanup();
  cleanup.onSignals();
  const results = new Map<string, Run[]>();
  const loadBefore = os.loadavg();
  try {
    const backends = await Backends.start(o.stores, cleanup, progress);
    progress(`node ${process.version}, ${os.cpus().length} CPUs, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; concurrency ${o.concurrency}, ${o.warmup} s warm-up + ${o.seconds} s per run, ${o.rounds} rounds`);
    const runs: Array<[Store, Mode]> = o.stores.flatMap((s) => (['group', 'single'] as const).map((m): [Store, Mode] => [s, m]));
    for (let round = 0; round < o.rounds; round++) {
      for (let i = 0; i < runs.length; i++) {
        const [store, mode] = runs[(i + round) % runs.length];
        const opened = await backends.open(store, mode);
        try {
          if (o.warmup > 0) await measure(opened.log, opened.flushes, o.warmup, o.concurrency, false);
          const r = await measure(opened.log, opened.flushes, o.seconds, o.concurrency, true);
          const key = `${store}/${mode}`;
          results.set(key, [...(results.get(key) ?? []), r]);
          progress(
            `round ${round + 1}/${o.rounds} ${key.padEnd(15)} ${fmt(r.perSecond).padStart(8)}/s  ${(r.decisions / Math.max(1, r.flushes)).toFixed(1).padStart(6)} per flush  ` +
              `${r.cpuMicros.toFixed(1).padStart(6)} µs CPU each  p50 ${r.latencies.percentile(50).toFixed(2)} ms  p99 ${r.latencies.percentile(99).toFixed(2)} ms`,
          );
        } finally {
          await opened.log.close();
          await opened.dispose();
        }
      }
    }
  } finally {
    await cleanup.run();
  }

  const summary: Record<string, unknown> = {};
  const rows: string[][] = [];
  for (const store of o.stores) {
    const group = results.get(`${store}/group`)!;
    const single = results.get(`${store}/single`)!;
    const g = median(group.map((r) => r.perSecond));
    const s = median(single.map((r) => r.perSecond));
    const perFlush = median(group.map((r) => r.decisions / Math.max(1, r.flushes)));
    const all = new LatencyRecorder();
    for (const r of group) all.addAll(r.latencies);
    const met = g >= TARGETS[store];
    rows.push([
      store,
      fmt(g),
      group.map((r) => fmt(r.perSecond)).join(' / '),
      fmt(s),
      single.map((r) => fmt(r.perSecond)).join(' / '),
      `${(g / s).toFixed(1)}x`,
      perFlush.toFixed(1),
      `${all.percentile(50).toFixed(2)} / ${all.percentile(99).toFixed(2)}`,
      `${fmt(TARGETS[store])} ${met ? 'met' : 'MISSED'}`,
    ]);
    summary[store] = {
      group_per_s: Math.round(g),
      single_per_s: Math.round(s),
      speedup: Math.round((g / s) * 10) / 10,
      decisions_per_flush: Math.round(perFlush * 10) / 10,
      group_p50_ms: Math.round(all.percentile(50) * 100) / 100,
      group_p99_ms: Math.round(all.percentile(99) * 100) / 100,
      target_per_s: TARGETS[store],
      target_met: met,
    };
  }
  const loadAfter = os.loadavg();
  process.stdout.write(
    `\n${table(['store', 'group/s (median)', 'group/s per round', 'single/s (median)', 'single/s per round', 'speedup', 'per flush', 'group p50/p99 ms', 'target'], rows)}\n\n`,
  );
  process.stdout.write(`${JSON.stringify({ concurrency: o.concurrency, seconds: o.seconds, rounds: o.rounds, cpus: os.cpus().length, load_before: loadBefore[0], load_after: loadAfter[0], ...summary })}\n`);
  // Targets are reported, not enforced: on a shared 2-core VM a miss is as likely noise as a regression.
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  },
);
