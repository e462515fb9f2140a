// Forced decisions per second on the file decision log at a given concurrency,
// group commit against one-record-per-fdatasync, in the same run.
//
//   npx tsx bench/file-log-bench.ts [--seconds 3] [--concurrency 256]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { FileDecisionLog } from '../coordinator/log/file/file-decision-log';
import { nodeLogFs, type LogFs } from '../coordinator/log/file/log-fs';

interface Result {
  mode: string;
  decisions: number;
  seconds: number;
  fdatasyncs: number;
  p50: number;
  p99: number;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

async function run(mode: 'group' | 'single', seconds: number, concurrency: number): Promise<Result> {
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
  await log.open();
  const latencies: number[] = [];
  let decisions = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const txId = uuidv7();
      const t0 = performance.now();
      await log.decide({
        txId,
        at: Date.now(),
        outcome: 'commit',
        source: 'engine',
        branches: [
          { branchId: 1, gid: `twopc_${txId.replace(/-/g, '')}_1`, participant: 'accounts' },
          { branchId: 2, gid: `twopc_${txId.replace(/-/g, '')}_2`, participant: 'ledger' },
        ],
      });
      latencies.push(performance.now() - t0);
      decisions++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - start) / 1000;
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return { mode, decisions, seconds: elapsed, fdatasyncs, p50: pct(0.5), p99: pct(0.99) };
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 3);
  const concurrency = arg('concurrency', 256);
  console.log(`node ${process.version}, ${os.cpus().length} cpus, concurrency ${concurrency}, ${seconds}s per mode, dir ${os.tmpdir()}`);
  for (const mode of ['group', 'single'] as const) {
    const r = await run(mode, seconds, concurrency);
    console.log(
      `${r.mode.padEnd(6)} ${Math.round(r.decisions / r.seconds).toLocaleString('en-US').padStart(9)} forced decisions/s` +
        `  ${Math.round(r.fdatasyncs / r.seconds).toLocaleString('en-US').padStart(7)} fdatasync/s` +
        `  ${(r.decisions / Math.max(1, r.fdatasyncs)).toFixed(1).padStart(6)} per sync` +
        `  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
