import v8 from 'node:v8';
import { fullCollection } from '../../coordinator/service/heap-control';

// Run by heap-control.test.ts in a fresh process: in a jest worker the old
// generation also holds what earlier suites left, which moved the free space
// this measures by a few hundred KiB from run to run.
//
// One object in 80 outlives the loop, scattered across every page the loop
// filled (as outcomes and running transactions are among a request's
// garbage). A plain gc() left 17–120 MiB of such pages committed; V8 picks
// which pages to evacuate by its own heuristics. Prints the old generation's
// committed-but-free bytes after fullCollection().
const gc = fullCollection();
let kept: Array<{ i: number }> = [];
for (let round = 0; round < 40; round++) {
  const garbage: Array<{ i: number }> = [];
  for (let i = 0; i < 100_000; i++) {
    const o = { i, s: `x${i}`, a: [i] };
    (i % 20 === 0 ? kept : garbage).push(o);
  }
}
kept = kept.filter((_, i) => i % 4 === 0);
gc();
const old = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'old_space');
process.stdout.write(`${JSON.stringify({ kept: kept.length, freeBytes: old ? old.space_size - old.space_used_size : null })}\n`);
