// Forced (commit) decisions per second on the file decision log at a given
// concurrency: group commit against one fdatasync per decision, in the same
// run, on the same disk. Each worker loops `await log.decide(commit)` on a
// fresh transaction id, so the log's in-memory index grows as it would with
// that many transactions in flight.
//
//   npx tsx bench/file-log-bench.ts [--seconds 3] [--concurrency 256] [--rounds 3]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { FileDecisionLog } from '../coordinator/log/file/file-decision-log';
import { nodeLogFs, type LogFs } from '../coordinator/log/file/log-fs';

type Mode = 'group' | 'single';

interface Result {
  mode: Mode;
  perSecond: number;
  fdatasyncs: number;
  decisions: number;
  cpuMicrosPerDecision: number;
  p50: number;
  p99: number;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

async function run(mode: Mode, seconds: number, concurrency: number): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twopc-bench-${mode}-`));
  const base = nodeLogFs();
  let fdatasyncs = 0;
  const counting: LogFs = {
    ...base,
    fdatasync: (fd) => {
      fdatasyncs++;
      return base.fdatasync(fd);
    },
  };
  const log = new FileDecisionLog({ dir, groupCommit: mode === 'group', fs: counting });
  try {
    await log.open();
    const latencies: number[] = [];
    let decisions = 0;
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
        latencies.push(performance.now() - t0);
        decisions++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpu0);
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
    return {
      mode,
      perSecond: decisions / elapsed,
      fdatasyncs,
      decisions,
      cpuMicrosPerDecision: (cpu.user + cpu.system) / decisions,
      p50: pct(0.5),
      p99: pct(0.99),
    };
  } finally {
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function line(r: Result): string {
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  return (
    `${r.mode.padEnd(6)} ${n(r.perSecond).padStart(8)} decisions/s  ${(r.decisions / Math.max(1, r.fdatasyncs)).toFixed(1).padStart(6)} per fdatasync` +
    `  ${r.cpuMicrosPerDecision.toFixed(1).padStart(5)} µs CPU each  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms`
  );
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 3);
  const concurrency = arg('concurrency', 256);
  const rounds = arg('rounds', 3);
  const load = os.loadavg()[0].toFixed(2);
  console.log(`node ${process.version}, ${os.cpus().length} CPUs (load ${load}), concurrency ${concurrency}, ${seconds} s per mode, ${rounds} rounds, ${os.tmpdir()}`);
  const all: Result[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const mode of ['group', 'single'] as const) {
      const r = await run(mode, seconds, concurrency);
      all.push(r);
      console.log(`round ${i + 1}  ${line(r)}`);
    }
  }
  for (const mode of ['group', 'single'] as const) {
    const rates = all.filter((r) => r.mode === mode).map((r) => r.perSecond).sort((a, b) => a - b);
    console.log(`${mode.padEnd(6)} median ${Math.round(rates[Math.floor(rates.length / 2)]).toLocaleString('en-US')}/s, best ${Math.round(rates[rates.length - 1]).toLocaleString('en-US')}/s`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
