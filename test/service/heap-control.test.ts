import path from 'node:path';
import v8 from 'node:v8';
import { loadServiceConfig } from '../../coordinator/assembly/service-config';
import { fullCollection, IdleCollector } from '../../coordinator/service/heap-control';
import { jsonLines, runTs } from '../support/child';

/**
 * Issue 16: `twopc serve` bounds V8's heap itself (service/heap-control.ts).
 * The idle collector is driven by hand: each `tick()` is one check.
 */
function driven(idleMs: number, footprint?: { bytes: number }): { started: { n: number }; collected: () => number; tick: (n?: number) => void; checkMs: number } {
  const started = { n: 0 };
  let collections = 0;
  let check: () => void = () => undefined;
  let checkMs = 0;
  new IdleCollector({
    idleMs,
    started: () => started.n,
    collect: () => (collections += 1),
    ...(footprint ? { footprint: () => footprint.bytes, regrowBytes: 100 } : {}),
    every: (fn, ms) => {
      check = fn;
      checkMs = ms;
      return { stop: () => undefined };
    },
  });
  return { started, collected: () => collections, tick: (n = 1) => { for (let i = 0; i < n; i++) check(); }, checkMs };
}

describe('IdleCollector', () => {
  it('collects once after the work stops, not before the idle time, not again until work resumes', () => {
    const c = driven(1000);
    expect(c.checkMs).toBe(250);
    c.tick(20);
    // Idle from the start: nothing to give back.
    expect(c.collected()).toBe(0);
    c.started.n += 5;
    c.tick();
    c.tick(4);
    // The first quiet check starts the idle time: four checks of 250 ms later it is 750 ms.
    expect(c.collected()).toBe(0);
    c.tick();
    expect(c.collected()).toBe(1);
    c.tick(40);
    expect(c.collected()).toBe(1);
    c.started.n += 1;
    c.tick(6);
    expect(c.collected()).toBe(2);
  });

  it('collects again while idle when the footprint grows past the lowest reading since the last collection, at most once per idle time', () => {
    const mem = { bytes: 1_000 };
    const c = driven(1000, mem);
    c.started.n += 1;
    c.tick(6);
    expect(c.collected()).toBe(1);
    mem.bytes = 500; // what the collection gave back
    c.tick();
    // A compaction while idle allocates: 120 above the lowest reading.
    mem.bytes = 620;
    c.tick();
    // Within the idle time of the last collection: not yet.
    expect(c.collected()).toBe(1);
    c.tick(2);
    expect(c.collected()).toBe(2);
    // A growth it could not give back (malloc's arenas) repeats nothing: the lowest reading starts afresh.
    c.tick(40);
    expect(c.collected()).toBe(2);
    mem.bytes = 700;
    c.tick(40);
    expect(c.collected()).toBe(2);
    mem.bytes = 720;
    c.tick(4);
    expect(c.collected()).toBe(3);
    // Work resumes: nothing more until the next idle collection.
    c.started.n += 1;
    c.tick();
    mem.bytes = 10_000;
    c.tick(4);
    expect(c.collected()).toBe(3);
    c.tick();
    expect(c.collected()).toBe(4);
  });

  it('collects after the prepared work (the log\'s compaction) has finished, not before it; nothing while it runs', async () => {
    let collections = 0;
    let check: () => void = () => undefined;
    let finish: () => void = () => undefined;
    let prepared = 0;
    const started = { n: 0 };
    new IdleCollector({
      idleMs: 1000,
      started: () => started.n,
      collect: () => (collections += 1),
      prepare: () => {
        prepared += 1;
        return new Promise<void>((r) => (finish = r));
      },
      every: (fn) => ((check = fn), { stop: () => undefined }),
    });
    started.n += 1;
    for (let i = 0; i < 6; i++) check();
    expect(prepared).toBe(1);
    expect(collections).toBe(0);
    for (let i = 0; i < 10; i++) check();
    expect([prepared, collections]).toEqual([1, 0]);
    finish();
    await new Promise((r) => setImmediate(r));
    expect(collections).toBe(1);
    // Work that starts while it runs ends that idle period without a collection; the next one collects.
    started.n += 1;
    for (let i = 0; i < 6; i++) check();
    expect(prepared).toBe(2);
    started.n += 1;
    finish();
    await new Promise((r) => setImmediate(r));
    expect(collections).toBe(1);
    for (let i = 0; i < 6; i++) check();
    finish();
    await new Promise((r) => setImmediate(r));
    expect([prepared, collections]).toEqual([3, 2]);
  });

  it('caps the young generation from the first idle collection until work resumes or it stops, once each', () => {
    const calls: string[] = [];
    let check: () => void = () => undefined;
    const started = { n: 0 };
    const mem = { bytes: 1_000 };
    const collector = new IdleCollector({
      idleMs: 1000,
      started: () => started.n,
      collect: () => calls.push('collect'),
      footprint: () => mem.bytes,
      regrowBytes: 100,
      youngGeneration: { cap: () => calls.push('cap'), uncap: () => calls.push('uncap') },
      every: (fn) => ((check = fn), { stop: () => undefined }),
    });
    const tick = (n: number): void => {
      for (let i = 0; i < n; i++) check();
    };
    started.n += 1;
    tick(4);
    expect(calls).toEqual([]);
    tick(2);
    expect(calls).toEqual(['collect', 'cap']);
    // A repeated collection while idle: already capped.
    mem.bytes = 500;
    tick(1);
    mem.bytes = 700;
    tick(4);
    expect(calls).toEqual(['collect', 'cap', 'collect']);
    // Work resumes: uncapped at the first check that sees it, before any other decision.
    started.n += 1;
    tick(1);
    expect(calls).toEqual(['collect', 'cap', 'collect', 'uncap']);
    tick(6);
    expect(calls.slice(4)).toEqual(['collect', 'cap']);
    collector.stop();
    expect(calls.slice(6)).toEqual(['uncap']);
    // Stopping again, or a stop while uncapped, restores nothing twice.
    collector.stop();
    expect(calls).toHaveLength(7);
  });

  it('a request that starts while capped lifts the cap at once, not at the next check', () => {
    const calls: string[] = [];
    let check: () => void = () => undefined;
    const started = { n: 0 };
    const collector = new IdleCollector({
      idleMs: 1000,
      started: () => started.n,
      collect: () => calls.push('collect'),
      youngGeneration: { cap: () => calls.push('cap'), uncap: () => calls.push('uncap') },
      every: (fn) => ((check = fn), { stop: () => undefined }),
    });
    started.n += 1;
    for (let i = 0; i < 6; i++) check();
    expect(calls).toEqual(['collect', 'cap']);
    collector.working();
    expect(calls).toEqual(['collect', 'cap', 'uncap']);
    // The next check sees the request: nothing to lift twice; many requests, one flag write.
    started.n += 1;
    collector.working();
    check();
    expect(calls).toEqual(['collect', 'cap', 'uncap']);
    collector.stop();
    expect(calls).toHaveLength(3);
  });

  it('never collects while requests keep starting', () => {
    const c = driven(1000);
    for (let i = 0; i < 100; i++) {
      c.started.n += 1;
      c.tick();
    }
    expect(c.collected()).toBe(0);
  });
});

describe('heap settings', () => {
  it('fullCollection gives a callable full collection that frees garbage', () => {
    const gc = fullCollection();
    const made = (): number => Array.from({ length: 200_000 }, (_, i) => ({ i })).length;
    expect(made()).toBe(200_000);
    const before = v8.getHeapStatistics().used_heap_size;
    gc();
    expect(v8.getHeapStatistics().used_heap_size).toBeLessThan(before);
  });

  it('fullCollection compacts: the old generation gives back the pages a load left with a few live objects among the garbage', async () => {
    const run = await runTs(path.join(__dirname, 'full-collection-child.ts'), {});
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const [after] = jsonLines<{ kept: number; freeBytes: number }>(run.stdout);
    expect(after.kept).toBe(50_000);
    expect(after.freeBytes).toBeLessThan(4 * 2 ** 20);
  });

  it('is configured by memory.* and TWOPC_* settings, with defaults', () => {
    expect(loadServiceConfig({ env: {} }).memory).toEqual({ heapGrowingPercent: 25, collectWhenIdleMs: 10_000 });
    expect(loadServiceConfig({ env: { TWOPC_HEAP_GROWING_PERCENT: '0', TWOPC_COLLECT_WHEN_IDLE_MS: '0' } }).memory).toEqual({ heapGrowingPercent: 0, collectWhenIdleMs: 0 });
    expect(() => loadServiceConfig({ env: { TWOPC_HEAP_GROWING_PERCENT: '5000' } })).toThrow(/memory.heapGrowingPercent must be <= 1000/);
  });
});
