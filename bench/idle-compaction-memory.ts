import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { FileDecisionLog } from '../coordinator/log/file/file-decision-log';
import { fullCollection } from '../coordinator/service/heap-control';

// Issue 16, idle RSS: what one compaction of an idle file log allocates when a few outcomes have
// expired and every kept one is rewritten into the snapshot (as the 30-s timer did after a load),
// and what the idle collection gives back afterwards.
//   npx tsx bench/idle-compaction-memory.ts [outcomes=120000]
const N = Number(process.argv[2] ?? 120_000);
const RETENTION = 600_000;
const T0 = 1_700_000_000_000;
const uuid = (i: number) => `0190a1b2-c3d4-7e5f-8a9b-${i.toString(16).padStart(12, '0')}`;
const MiB = (n: number) => (n / 2 ** 20).toFixed(1);

function sample(label: string): void {
  const m = process.memoryUsage();
  const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!;
  console.log(`${label.padEnd(34)} rss ${MiB(m.rss).padStart(6)}  heap used ${MiB(m.heapUsed).padStart(5)} of ${MiB(m.heapTotal).padStart(5)}  young ${MiB(young.space_size).padStart(5)}  external ${MiB(m.external).padStart(5)}  array buffers ${MiB(m.arrayBuffers).padStart(5)}`);
}

async function main(): Promise<void> {
  const gc = fullCollection();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idle-compaction-'));
  let now = T0;
  const log = new FileDecisionLog({ dir, autoCompact: false, maxRetainedCompleted: 0, completedRetentionMs: RETENTION, now: () => now });
  await log.open();
  // Completions spread over the retention period, as a steady load leaves them.
  const step = RETENTION / N;
  for (let from = 0; from < N; from += 500) {
    const writes: Array<Promise<unknown>> = [];
    for (let i = from; i < Math.min(N, from + 500); i++) {
      const txId = uuid(i);
      const at = T0 + Math.floor(i * step);
      const branches = [{ branchId: 1, gid: `twopc_${i}_1`, participant: 'ledger', url: 'http://127.0.0.1:9/twopc' }];
      writes.push((async () => {
        await log.append({ type: 'begin', txId, at, expiresAt: at + 30_000 });
        await log.append({ type: 'enlist', txId, at, branch: branches[0] });
        await log.decide({ txId, at, outcome: 'commit', source: 'engine', branches });
        await log.append({ type: 'complete', txId, at, outcome: 'commit' });
      })());
    }
    await Promise.all(writes);
  }
  now = T0 + RETENTION;
  await log.compact();
  await log.compact();
  gc();
  sample(`${N} outcomes held, collected`);
  await new Promise((r) => setTimeout(r, 2_000));
  sample('  2 s later');
  for (const expired of [0.05, 0.1]) {
    now = T0 + RETENTION + Math.floor(expired * RETENTION);
    // The highest readings while the compaction runs (sampled every 10 ms).
    const peak = { rss: 0, external: 0, arrayBuffers: 0, heapUsed: 0 };
    const t = setInterval(() => {
      const m = process.memoryUsage();
      for (const k of ['rss', 'external', 'arrayBuffers', 'heapUsed'] as const) peak[k] = Math.max(peak[k], m[k]);
    }, 10);
    await log.compact();
    clearInterval(t);
    console.log(`compaction forgetting ${expired * 100} %: peaks: rss ${MiB(peak.rss)}, heap used ${MiB(peak.heapUsed)}, external ${MiB(peak.external)}, array buffers ${MiB(peak.arrayBuffers)}`);
    sample('  right after');
    await new Promise((r) => setTimeout(r, 2_000));
    sample('  2 s later');
    gc();
    sample('  after the idle collection');
    await new Promise((r) => setTimeout(r, 2_000));
    sample('  2 s later');
  }
  console.log(`snapshot: ${MiB(fs.readdirSync(dir).filter((f) => f.startsWith('snapshot-')).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0))} MiB`);
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

void main();
