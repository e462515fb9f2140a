import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Coordinator } from '../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../coordinator/log/file/file-decision-log';
import { instantDatabase } from './profile/instant-database';
import { PostgresParticipant } from '../coordinator/participants/postgres/postgres-participant';
import { baseCheckout } from './modes/base-checkout';
import type { EngineImpl } from './modes/engine';
import { syncWriteLogFs } from './profile/sync-write-fs';
import { threadCpu, threadCpuSince, type ThreadCpu } from './profile/thread-cpu';

/**
 * The engine's own Node CPU per transaction, without PostgreSQL: two
 * participants that answer at once (a resolved promise per call), the real
 * FileDecisionLog, `coordinator.transaction` as the bench's engine mode
 * drives it. Prints CPU (user + system, all threads) per transaction, per
 * variant, over interleaved rounds: `this` (this checkout), `base` (the
 * checkout in BENCH_BASE_DIR, when set), `syncwrite` (this checkout with the
 * file log's writes made synchronously, when SYNC_WRITE is set).
 *
 *   npx tsx bench/engine-cpu-bench.ts [transactions per round] [concurrency] [rounds]
 */
interface Variant {
  name: string;
  impl: EngineImpl;
  syncWrite?: boolean;
}

async function round(variant: Variant, total: number, concurrency: number): Promise<{ cpuUs: number; ms: number; threads: ThreadCpu }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'engine-cpu-'));
  const log = new variant.impl.FileDecisionLog({ dir, ...(variant.syncWrite ? { fs: syncWriteLogFs() } : {}) });
  const coordinator = await variant.impl.Coordinator.start({ log, databases: [instantDatabase('a'), instantDatabase('b')] });
  const databases = ['a', 'b'] as const;
  const one = () =>
    coordinator.transaction(
      async (tx) => {
        await tx.db('a').query('update', [1]);
        await tx.db('b').query('update', [2]);
      },
      { databases },
    );
  let left = Math.min(1_000, total);
  const worker = async () => {
    while (left-- > 0) await one();
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  left = total;
  const threads = threadCpu();
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const used = process.cpuUsage(cpu);
  const split = threadCpuSince(threads);
  const ms = performance.now() - started;
  await coordinator.close();
  rmSync(dir, { recursive: true, force: true });
  return { cpuUs: used.user + used.system, ms, threads: split };
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 5_000);
  const concurrency = Number(process.argv[3] ?? 16);
  const rounds = Number(process.argv[4] ?? 4);
  const variants: Variant[] = [{ name: 'this', impl: { Coordinator, FileDecisionLog, PostgresParticipant } }];
  if (process.env.BENCH_BASE_DIR) variants.push({ name: 'base', impl: await baseCheckout() });
  if (process.env.SYNC_WRITE) variants.push({ name: 'syncwrite', impl: variants[0].impl, syncWrite: true });
  const sums = new Map(variants.map((v) => [v.name, { cpuUs: 0, ms: 0, perRound: [] as string[], mainNs: 0, otherNs: 0, sleeps: 0 }]));
  for (let r = 0; r < rounds; r++) {
    // Every round starts one variant later, as the bench's rounds do.
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + r) % variants.length];
      const { cpuUs, ms, threads } = await round(v, total, concurrency);
      const sum = sums.get(v.name)!;
      sum.mainNs += threads.mainNs;
      sum.otherNs += threads.otherNs;
      sum.sleeps += threads.mainSleeps;
      sum.cpuUs += cpuUs;
      sum.ms += ms;
      sum.perRound.push((cpuUs / 1000 / total).toFixed(3));
    }
  }
  for (const [name, s] of sums) {
    const n = total * rounds;
    console.log(
      `${name.padEnd(10)} CPU ms/tx ${(s.cpuUs / 1000 / n).toFixed(4)} (main thread ${(s.mainNs / 1e6 / n).toFixed(4)}, others ${(s.otherNs / 1e6 / n).toFixed(4)}, main-thread sleeps/tx ${(s.sleeps / n).toFixed(2)})  tps ${Math.round(n / (s.ms / 1000))}  per round ${s.perRound.join(' / ')}`,
    );
  }
}

void main();
