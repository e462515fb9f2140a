import { createHook } from 'node:async_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Coordinator } from '../coordinator/in-process/coordinator';
import { FileDecisionLog } from '../coordinator/log/file/file-decision-log';
import { instantDatabase } from './profile/instant-database';

/**
 * Where the engine's promises (and other async resources) per transaction are
 * made: each one charged to the innermost frame of twopc's own code that made
 * it, over N transactions of `coordinator.transaction` on two instant
 * participants (no PostgreSQL) and the real file log, at concurrency 1.
 *
 *   npx tsx bench/promise-sources.ts [transactions] [top]
 */
async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 200);
  const top = Number(process.argv[3] ?? 40);
  const dir = mkdtempSync(path.join(tmpdir(), 'promise-sources-'));
  const coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir }), databases: [instantDatabase('a'), instantDatabase('b')] });
  const one = () =>
    coordinator.transaction(
      async (tx) => {
        await tx.db('a').query('update', [1]);
        await tx.db('b').query('update', [2]);
      },
      { databases: ['a', 'b'] },
    );
  for (let i = 0; i < 200; i++) await one();
  const counts = new Map<string, number>();
  const root = path.resolve(__dirname, '..');
  let on = false;
  const hook = createHook({
    init(_id, type) {
      if (!on) return;
      on = false;
      const frames = (new Error().stack ?? '').split('\n').slice(2);
      on = true;
      const own = frames.find((f) => f.includes(root) && !f.includes('node_modules') && !f.includes('promise-sources'));
      const where = own ? own.trim().replace(`${root}/`, '').replace(/^at /, '') : '(outside twopc)';
      const key = `${type.padEnd(14)} ${where}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    },
  });
  hook.enable();
  on = true;
  for (let i = 0; i < n; i++) await one();
  on = false;
  hook.disable();
  const rows = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, c]) => s + c, 0);
  console.log(`${(total / n).toFixed(1)} async resources per transaction`);
  for (const [k, c] of rows.slice(0, top)) console.log(`${(c / n).toFixed(2).padStart(7)}  ${k}`);
  await coordinator.close();
  rmSync(dir, { recursive: true, force: true });
}

void main();
