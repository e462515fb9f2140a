import v8 from 'node:v8';
import vm from 'node:vm';

/** V8's full collection, made callable in a test (the way jest's leak detector gets it). */
export function gcNow(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Full collections until the heap stops shrinking: what is left is what is live (freed buffers included). */
export async function settle(gc: () => void): Promise<void> {
  let last = Infinity;
  for (let i = 0; i < 10; i++) {
    await new Promise<void>((r) => setImmediate(r));
    gc();
    const m = process.memoryUsage();
    if (m.heapUsed + m.arrayBuffers >= last) return;
    last = m.heapUsed + m.arrayBuffers;
  }
}
