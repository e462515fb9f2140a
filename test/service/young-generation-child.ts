import v8 from 'node:v8';
import { youngGenerationCap } from '../../coordinator/service/heap-control';

// Run by young-generation-cap.test.ts in a fresh process: jest's workers have
// grown their young generation long before a test runs. Prints the new space's
// size after allocating survivors capped, then again uncapped.
const newSpaceMiB = (): number => (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? NaN) / 1048576;

const kept: object[][] = [];
// Objects that survive a few scavenges each: what makes V8 grow the space.
function allocate(rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    kept.push(Array.from({ length: 5000 }, (_, j) => ({ j, s: `s${j}` })));
    if (kept.length > 40) kept.splice(0, 20);
  }
}

const young = youngGenerationCap();
const start = newSpaceMiB();
young.cap();
allocate(400);
const capped = newSpaceMiB();
young.uncap();
allocate(400);
const uncapped = newSpaceMiB();
process.stdout.write(`${JSON.stringify({ start, capped, uncapped })}\n`);
