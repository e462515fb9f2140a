import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Coordinator } from '../coordinator/in-process/coordinator';
import type { BranchOpener } from '../coordinator/in-process/transaction-scope';
import type { BranchRef } from '../coordinator/engine/ports/participant';
import type { Vote } from '../coordinator/engine/ports/types';
import { FileDecisionLog } from '../coordinator/log/file/file-decision-log';
import { syncWriteLogFs } from './profile/sync-write-fs';

/**
 * The engine's own Node CPU per transaction, without PostgreSQL: two
 * participants that answer at once (a resolved promise per call), the real
 * FileDecisionLog, `coordinator.transaction` as the bench's engine mode
 * drives it. Prints CPU (user + system, all threads) per transaction.
 *
 *   npx tsx bench/engine-cpu-bench.ts [transactions] [concurrency]
 */
function instantDatabase(name: string): BranchOpener {
  const yes: Vote = { vote: 'yes', xid: '1.1:100' };
  const updated = { command: 'UPDATE', rowCount: 1, rows: [] };
  const database: BranchOpener = {
    name,
    prepare: (_b: BranchRef) => Promise.resolve(yes),
    commit: () => Promise.resolve(),
    rollback: () => Promise.resolve(),
    close: () => Promise.resolve(),
    openBranch: () => Promise.resolve({ query: () => Promise.resolve(updated) }),
  };
  return database;
}

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 20_000);
  const concurrency = Number(process.argv[3] ?? 16);
  const dir = mkdtempSync(path.join(tmpdir(), 'engine-cpu-'));
  const coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir, ...(process.env.SYNC_WRITE ? { fs: syncWriteLogFs() } : {}) }), databases: [instantDatabase('a'), instantDatabase('b')] });
  const databases = ['a', 'b'] as const;
  const one = () =>
    coordinator.transaction(
      async (tx) => {
        await tx.db('a').query('update', [1]);
        await tx.db('b').query('update', [2]);
      },
      { databases },
    );
  let left = Math.min(2_000, total);
  const warm = async () => {
    while (left-- > 0) await one();
  };
  await Promise.all(Array.from({ length: concurrency }, warm));
  left = total;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, warm));
  const used = process.cpuUsage(cpu);
  const ms = performance.now() - started;
  await coordinator.close();
  rmSync(dir, { recursive: true, force: true });
  const perTx = (us: number) => (us / 1000 / total).toFixed(4);
  console.log(JSON.stringify({ transactions: total, concurrency, cpuMsPerTx: perTx(used.user + used.system), userMsPerTx: perTx(used.user), systemMsPerTx: perTx(used.system), tps: Math.round(total / (ms / 1000)) }));
}

void main();
