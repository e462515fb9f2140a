import path from 'node:path';
import type { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { Coordinator } from '../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../coordinator/log/file/file-decision-log';
import { PostgresParticipant } from '../coordinator/participants/postgres/postgres-participant';
import { buildGid } from '../participant-sdk/src/gid';
import { BankClusters } from './bank-clusters';
import { Cleanup } from './cleanup';
import { GroupCommitFile } from './group-commit-file';
import { baseCheckout } from './modes/base-checkout';
import type { EngineImpl } from './modes/engine';
import type { LogFs } from '../coordinator/log/file/log-fs';
import type { DecisionLog } from '../coordinator/engine/ports/decision-log';
import { noAppends } from './profile/no-appends';
import { syncWriteLogFs } from './profile/sync-write-fs';
import { AsyncCounts } from './profile/async-counts';
import { CpuProfiler } from './profile/cpu-profiler';
import { threadCpu, threadCpuSince, type ThreadCpu } from './profile/thread-cpu';
import { Timeline } from './profile/timeline';
import { transferPlan, UPDATE_BALANCE } from './transfer-plan';

/**
 * Node CPU and latency per transfer of the in-process path on real
 * PostgreSQL, layer by layer, with less noise than the bank bench: no
 * PostgreSQL CPU metering, no other modes' pools, many transfers per round.
 * Variants run side by side, alternating in slices of SLICE (100) transfers,
 * so the machine's other load lands on all of them alike:
 *
 * - `raw`: plain pg, the bank bench's raw mode without the decision file
 *   (BEGIN ×2, UPDATE, UPDATE, PREPARE ×2, COMMIT PREPARED ×2);
 * - `adapter`: the same through this checkout's PostgresParticipant (the
 *   coordinator's defaults: commitProof xid, connection kept for phase 2),
 *   called directly: openBranch, query, prepare, commit; no engine, no log;
 * - `raw-file`, `adapter-file`: with the raw mode's decision line (group-committed file) between PREPARE and COMMIT PREPARED;
 * - `engine`: `coordinator.transaction` with a FileDecisionLog, as the bench's engine mode;
 * - `engine-syncwrite`: `engine` with the file log's writes made on the main thread (what-if, bench/profile/sync-write-fs.ts);
 * - `engine-noappend`: `engine` whose begin, enlist and complete records are dropped (what-if, not a valid log: bench/profile/no-appends.ts);
 * - `adapter-base`, `engine-base`: the same from the checkout in BENCH_BASE_DIR.
 *
 *   npx tsx bench/adapter-cpu-bench.ts [transfers per round] [concurrency] [rounds] [variants]
 *   BENCH_BASE_DIR=/work/wt/base npx tsx bench/adapter-cpu-bench.ts 2000 1 6 raw,adapter,adapter-base,engine,engine-base
 *
 * COUNT=1 also prints, per variant, what one transfer sets in motion (async_hooks' resources by
 * type: promises, timers, immediates, thread-pool requests; garbage collections): the hook slows
 * every variant down, so read the counts of such a run, not its CPU.
 * TIMELINE=1 (concurrency 1) prints, per variant, the median time of each step of a transfer:
 * statement round trips and the client's own work between an answer and the next send.
 * PROFILE_DIR=<dir> writes a V8 CPU profile of each round's measured slices (all variants of the
 * run in one profile: give one variant to profile it alone), sampled every PROFILE_INTERVAL_US (50).
 */
type Run = (t: { delta: number; accountA: number; accountB: number }) => Promise<void>;

interface Variant {
  name: string;
  setup(pools: Record<'a' | 'b', Pool>, dir: string): Promise<{ run: Run; close(): Promise<void> }>;
}

/** The decision line the bank bench's raw mode writes (group commit, fdatasync), when `file`. */
async function decisionFile(dir: string, file: boolean): Promise<{ decide(gid: string): Promise<void>; close(): Promise<void> }> {
  if (!file) return { decide: async () => undefined, close: async () => undefined };
  const f = await GroupCommitFile.create(path.join(dir, 'decisions.log'));
  return { decide: (gid) => f.append(`${JSON.stringify({ gid, outcome: 'commit' })}\n`), close: () => f.close() };
}

function rawVariant(file = false): Variant {
  let n = 0;
  return {
    name: file ? 'raw-file' : 'raw',
    async setup(pools, dir) {
      const decisions = await decisionFile(dir, file);
      return {
        async run(t) {
          const gid = `adapterbench_${process.pid}_${++n}`;
          const [a, b] = await Promise.all([pools.a.connect(), pools.b.connect()]);
          try {
            await Promise.all([a.query('begin'), b.query('begin')]);
            await a.query(UPDATE_BALANCE, [t.delta, t.accountA]);
            await b.query(UPDATE_BALANCE, [-t.delta, t.accountB]);
            await Promise.all([a.query(`prepare transaction '${gid}'`), b.query(`prepare transaction '${gid}'`)]);
            await decisions.decide(gid);
            await Promise.all([a.query(`commit prepared '${gid}'`), b.query(`commit prepared '${gid}'`)]);
          } finally {
            a.release();
            b.release();
          }
        },
        close: () => decisions.close(),
      };
    },
  };
}

function adapterVariant(name: string, impl: () => Promise<EngineImpl>, file = false): Variant {
  return {
    name,
    async setup(pools, dir) {
      const decisions = await decisionFile(dir, file);
      const { PostgresParticipant: P } = await impl();
      const a = new P({ name: 'ledger_a', pool: pools.a });
      const b = new P({ name: 'ledger_b', pool: pools.b });
      await a.start();
      await b.start();
      return {
        async run(t) {
          const txId = uuidv7();
          const ra = { txId, branchId: 1, gid: buildGid('twopc', txId, 1), participant: 'ledger_a' };
          const rb = { txId, branchId: 2, gid: buildGid('twopc', txId, 2), participant: 'ledger_b' };
          const [ba, bb] = await Promise.all([a.openBranch(ra), b.openBranch(rb)]);
          await ba.query(UPDATE_BALANCE, [t.delta, t.accountA]);
          await bb.query(UPDATE_BALANCE, [-t.delta, t.accountB]);
          const [va, vb] = await Promise.all([a.prepare(ra), b.prepare(rb)]);
          if (va.vote !== 'yes' || vb.vote !== 'yes') throw new Error(`voted ${va.vote} / ${vb.vote}`);
          await decisions.decide(ra.gid);
          await Promise.all([a.commit({ ...ra, ...('xid' in va ? { xid: va.xid } : {}) }), b.commit({ ...rb, ...('xid' in vb ? { xid: vb.xid } : {}) })]);
        },
        close: async () => {
          await a.close();
          await b.close();
          await decisions.close();
        },
      };
    },
  };
}

function engineVariant(name: string, impl: () => Promise<EngineImpl>, logFs?: () => LogFs, wrapLog: (log: DecisionLog) => DecisionLog = (log) => log): Variant {
  return {
    name,
    async setup(pools, dir) {
      const I = await impl();
      const participants = [new I.PostgresParticipant({ name: 'ledger_a', pool: pools.a }), new I.PostgresParticipant({ name: 'ledger_b', pool: pools.b })];
      for (const p of participants) await p.start();
      const coordinator = await I.Coordinator.start({ log: wrapLog(new I.FileDecisionLog({ dir, ...(logFs ? { fs: logFs() } : {}) })), databases: participants });
      const databases = ['ledger_a', 'ledger_b'] as const;
      return {
        async run(t) {
          await coordinator.transaction(
            async (tx) => {
              await tx.db('ledger_a').query(UPDATE_BALANCE, [t.delta, t.accountA]);
              await tx.db('ledger_b').query(UPDATE_BALANCE, [-t.delta, t.accountB]);
            },
            { databases },
          );
        },
        close: async () => {
          await coordinator.close();
          for (const p of participants) await p.close();
        },
      };
    },
  };
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 2_000);
  const concurrency = Number(process.argv[3] ?? 1);
  const rounds = Number(process.argv[4] ?? 4);
  const wanted = (process.argv[5] ?? 'raw,adapter,engine').split(',');
  const here = async (): Promise<EngineImpl> => ({ Coordinator, FileDecisionLog, PostgresParticipant });
  const all: Variant[] = [
    rawVariant(),
    rawVariant(true),
    adapterVariant('adapter', here),
    adapterVariant('adapter-file', here, true),
    engineVariant('engine', here),
    engineVariant('engine-syncwrite', here, syncWriteLogFs),
    engineVariant('engine-noappend', here, undefined, noAppends),
    adapterVariant('adapter-base', baseCheckout),
    adapterVariant('adapter-file-base', baseCheckout, true),
    engineVariant('engine-base', baseCheckout),
  ];
  const variants = wanted.map((w) => {
    const v = all.find((x) => x.name === w);
    if (!v) throw new Error(`unknown variant ${w} (have ${all.map((x) => x.name).join(', ')})`);
    return v;
  });
  const cleanup = new Cleanup();
  cleanup.onSignals();
  try {
    const clusters = await BankClusters.start({ accounts: 10_000, maxConnections: 100, maxPreparedTransactions: 100 }, cleanup);
    const sums = new Map(variants.map((v) => [v.name, { cpuUs: 0, n: 0, lat: [] as number[], perRound: [] as number[], counts: new Map<string, number>(), threads: { mainNs: 0, otherNs: 0, mainSleeps: 0 } as ThreadCpu }]));
    const counter = process.env.COUNT === '1' ? new AsyncCounts() : undefined;
    const timelines = process.env.TIMELINE === '1' ? new Map(variants.map((v) => [v.name, new Timeline()])) : undefined;
    const profiler = process.env.PROFILE_DIR ? new CpuProfiler(process.env.PROFILE_DIR, Number(process.env.PROFILE_INTERVAL_US ?? 50)) : undefined;
    const next = transferPlan(1, 10_000);
    const slice = Number(process.env.SLICE ?? 100);
    for (let r = 0; r < rounds; r++) {
      // Every variant set up side by side, then run in slices of `slice` transfers, alternating: a
      // busy spell of the machine's other work lands on every variant, not on one of them.
      const sessions: Array<{ v: Variant; pools: Record<'a' | 'b', Pool>; session: { run: Run; close(): Promise<void> }; cpuUs: number; n: number; lat: number[] }> = [];
      for (const v of variants) {
        const timeline = timelines?.get(v.name);
        const watched = (pool: Pool, label: string): Pool => (timeline ? timeline.watch(pool, label) : pool);
        const pools = { a: watched(clusters.pool('ledger_a', concurrency + 2), 'a'), b: watched(clusters.pool('ledger_b', concurrency + 2), 'b') };
        sessions.push({ v, pools, session: await v.setup(pools, clusters.tempDir(`${v.name}-${r}`)), cpuUs: 0, n: 0, lat: [] as number[] });
      }
      const runSlice = async (s: (typeof sessions)[number], count: number, measure: boolean): Promise<void> => {
        let left = count;
        const worker = async (): Promise<void> => {
          const timeline = measure ? timelines?.get(s.v.name) : undefined;
          while (left-- > 0) {
            const started = performance.now();
            timeline?.start();
            await s.session.run(next());
            if (measure) s.lat.push(performance.now() - started);
            timeline?.end();
          }
        };
        if (measure) counter?.count(sums.get(s.v.name)!.counts);
        const threads = threadCpu();
        const cpu = process.cpuUsage();
        await Promise.all(Array.from({ length: concurrency }, worker));
        const used = process.cpuUsage(cpu);
        const split = threadCpuSince(threads);
        counter?.stop();
        if (measure) {
          const t = sums.get(s.v.name)!.threads;
          t.mainNs += split.mainNs;
          t.otherNs += split.otherNs;
          t.mainSleeps += split.mainSleeps;
          s.cpuUs += used.user + used.system;
          s.n += count;
        }
      };
      for (const s of sessions) await runSlice(s, Math.max(200, total / 5), false);
      await profiler?.start();
      for (let done = 0, k = 0; done < total; done += slice, k++) {
        for (let i = 0; i < sessions.length; i++) await runSlice(sessions[(i + k + r) % sessions.length], Math.min(slice, total - done), true);
      }
      if (profiler) process.stderr.write(`profile: ${await profiler.stop(`${wanted.join('+')}-round${r + 1}`)}\n`);
      for (const s of sessions) {
        await s.session.close();
        await Promise.all([s.pools.a.end(), s.pools.b.end()]);
        const sum = sums.get(s.v.name)!;
        sum.cpuUs += s.cpuUs;
        sum.n += s.n;
        sum.lat.push(...s.lat);
        sum.perRound.push(s.cpuUs / 1000 / s.n);
        process.stderr.write(`round ${r + 1} ${s.v.name}: ${(s.cpuUs / 1000 / s.n).toFixed(3)} ms CPU/transfer, p50 ${percentile(s.lat, 0.5).toFixed(2)} ms\n`);
      }
    }
    const first = sums.get(variants[0].name)!;
    console.log(`variant             Node CPU ms/transfer  vs ${variants[0].name} (median of rounds)  p50 ms  p90 ms  CPU per round`);
    for (const [name, s] of sums) {
      const ratios = s.perRound.map((cpu, i) => cpu / first.perRound[i]);
      console.log(
        `${name.padEnd(19)} ${(s.cpuUs / 1000 / s.n).toFixed(3).padStart(20)}  ${percentile(ratios, 0.5).toFixed(3).padStart(30)}  ${percentile(s.lat, 0.5).toFixed(2).padStart(6)}  ${percentile(s.lat, 0.9).toFixed(2).padStart(6)}  ${s.perRound.map((x) => x.toFixed(3)).join(' / ')}`,
      );
    }
    profiler?.close();
    if (timelines) {
      const all = [...timelines.entries()].map(([name, t]) => [name, new Map(t.medians())] as const);
      console.log(`${'step (median ms)'.padEnd(70)}${all.map(([name]) => name.padStart(16)).join('')}`);
      for (const step of all[0][1].keys()) console.log(`${step.padEnd(70)}${all.map(([, m]) => (m.get(step) ?? NaN).toFixed(3).padStart(16)).join('')}`);
    }
    console.log('variant             main thread ms/transfer  other threads ms/transfer  main-thread sleeps/transfer');
    for (const [name, s] of sums) {
      console.log(`${name.padEnd(19)} ${(s.threads.mainNs / 1e6 / s.n).toFixed(3).padStart(23)}  ${(s.threads.otherNs / 1e6 / s.n).toFixed(3).padStart(25)}  ${(s.threads.mainSleeps / s.n).toFixed(2).padStart(27)}`);
    }
    if (counter) {
      counter.close();
      for (const [name, s] of sums) console.log(`${name}: per transfer\n${AsyncCounts.format(s.counts, s.n)}`);
    }
    const problems = await clusters.check();
    if (problems.length > 0) throw new Error(problems.join('; '));
  } finally {
    await cleanup.run();
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
