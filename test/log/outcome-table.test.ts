import fc from 'fast-check';
import { OutcomeTable, packOutcome } from '../../coordinator/log/outcome-table';
import { formatUuid, hashWords, parseUuid } from '../../coordinator/log/uuid-words';

const T0 = 1_700_000_000_000;
const uuid = (i: number) => `0190a1b2-c3d4-7e5f-8a9b-${i.toString(16).padStart(12, '0')}`;
const complete = (txId: string, at: number, outcome?: 'commit' | 'abort') => (outcome ? { type: 'complete' as const, txId, at, outcome } : { type: 'complete' as const, txId, at });

describe('uuid words', () => {
  it('parse only canonical lower-case UUIDs, and format back to the same text', () => {
    const w = new Int32Array(4);
    for (const id of ['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '0190a1b2-c3d4-7e5f-8a9b-0123456789ab']) {
      expect(parseUuid(id, w)).toBe(true);
      expect(formatUuid(w, 0)).toBe(id);
    }
    for (const id of ['0190A1B2-c3d4-7e5f-8a9b-0123456789ab', '0190a1b2c3d4-7e5f-8a9b-0123456789ab-', '0190a1b2-c3d4-7e5f-8a9b-0123456789a', '0190a1b2-c3d4-7e5f-8a9b-0123456789ag', 'tx-1', '']) {
      expect(parseUuid(id, w)).toBe(false);
    }
  });
});

describe('OutcomeTable', () => {
  it('sets, reads, replaces and deletes outcomes, UUID ids and others alike', () => {
    const t = new OutcomeTable();
    for (const id of [uuid(1), 'order-42', uuid(2).toUpperCase()]) {
      expect(t.has(id)).toBe(false);
      expect(t.set(complete(id, T0, 'commit'))).toBe(true);
      expect(t.has(id)).toBe(true);
      expect(t.get(id)).toEqual({ type: 'complete', txId: id, at: T0, outcome: 'commit' });
    }
    expect(t.size).toBe(3);
    t.set(complete(uuid(1), T0 + 5));
    expect(t.get(uuid(1))).toEqual({ type: 'complete', txId: uuid(1), at: T0 + 5 });
    expect(t.size).toBe(3);
    expect(t.get(uuid(2))).toBeUndefined();
    expect(t.delete(uuid(1))).toBe(true);
    expect(t.delete(uuid(1))).toBe(false);
    expect(t.delete('order-42')).toBe(true);
    expect(t.get(uuid(1))).toBeUndefined();
    expect(t.size).toBe(1);
    // A time that cannot be packed holds nothing.
    expect(t.set(complete(uuid(3), Number.MAX_SAFE_INTEGER))).toBe(false);
    expect(t.has(uuid(3))).toBe(false);
  });

  it('grows past its initial capacity and shrinks when retention empties it, answering the same throughout', () => {
    const t = new OutcomeTable();
    const N = 50_000;
    for (let i = 0; i < N; i++) t.setPacked(uuid(i), packOutcome(complete(uuid(i), T0 + i, i % 3 === 0 ? 'abort' : 'commit'))!);
    expect(t.size).toBe(N);
    for (let i = 0; i < N; i += 997) expect(t.get(uuid(i))).toEqual(complete(uuid(i), T0 + i, i % 3 === 0 ? 'abort' : 'commit'));
    for (let i = 0; i < N - 10; i++) expect(t.delete(uuid(i))).toBe(true);
    expect(t.size).toBe(10);
    expect(t.oldestAt()).toBe(T0 + N - 10);
    for (let i = N - 10; i < N; i++) expect(t.get(uuid(i))?.at).toBe(T0 + i);
    expect(t.has(uuid(0))).toBe(false);
  });

  it('finds an entry whose probe passed a slot deleted since (a tombstone, not an empty slot)', () => {
    // Two ids with the same index shard and home slot in a fresh table (top 8 bits of the hash, low 4).
    const w = new Int32Array(4);
    const home = (id: string) => (parseUuid(id, w), hashWords(w[0], w[1], w[2], w[3])) & 0xff00000f;
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; !pair; i++) {
      const h = home(uuid(i));
      const other = seen.get(h);
      if (other) pair = [other, uuid(i)];
      else seen.set(h, uuid(i));
    }
    const t = new OutcomeTable();
    t.set(complete(pair[0], T0, 'commit'));
    t.set(complete(pair[1], T0 + 1, 'abort'));
    t.delete(pair[0]);
    expect(t.get(pair[1])).toEqual(complete(pair[1], T0 + 1, 'abort'));
    expect(t.delete(pair[1])).toBe(true);
    expect(t.size).toBe(0);
  });

  it('oldestAt is the first entry held (a non-UUID one counts), skipping deleted ones', () => {
    const t = new OutcomeTable();
    expect(t.oldestAt()).toBeUndefined();
    t.set(complete(uuid(1), T0 + 10, 'commit'));
    t.set(complete(uuid(2), T0 + 20, 'commit'));
    expect(t.oldestAt()).toBe(T0 + 10);
    t.delete(uuid(1));
    expect(t.oldestAt()).toBe(T0 + 20);
    t.set(complete('legacy-id', T0 + 15, 'abort'));
    expect(t.oldestAt()).toBe(T0 + 15);
    t.delete(uuid(2));
    t.delete('legacy-id');
    expect(t.oldestAt()).toBeUndefined();
  });

  it('partitions in insertion order, skipping entries deleted during the walk and walking those added, across a growth', async () => {
    const t = new OutcomeTable();
    const N = 45_000;
    for (let i = 0; i < N; i++) t.set(complete(uuid(i), T0 + (i % 2 === 0 ? 0 : 100), 'commit'));
    // Re-setting an entry keeps its place; deleting and setting again moves it to the end.
    t.set(complete(uuid(1), T0 + 101, 'abort'));
    t.delete(uuid(3));
    t.set(complete(uuid(3), T0 + 100, 'commit'));
    t.set(complete('legacy', T0, 'commit'));
    const walk = t.partition(T0 + 50);
    // After the walk's first turn (it yields every 20,000 entries): deletes ahead of it and enough adds to grow the arrays.
    await new Promise<void>((r) => setImmediate(r));
    for (let i = 40_000; i < 40_010; i++) t.delete(uuid(i));
    for (let i = N; i < N + 30_000; i++) t.set(complete(uuid(i), T0 + 100, 'commit'));
    const { forget, keptIds, keptPacked } = await walk;
    const expectedIds = [...Array.from({ length: N }, (_, i) => i).filter((i) => i !== 3 && (i < 40_000 || i >= 40_010)), 3, ...Array.from({ length: 30_000 }, (_, i) => N + i)].map(uuid);
    const even = (id: string) => parseInt(id.slice(24), 16) % 2 === 0 && parseInt(id.slice(24), 16) < N;
    expect(forget).toEqual([...expectedIds.filter(even), 'legacy']);
    expect(keptIds).toEqual(expectedIds.filter((id) => !even(id)));
    expect(keptPacked[0]).toBe(packOutcome(complete(uuid(1), T0 + 101, 'abort')));
    expect(t.size).toBe(N + 30_000 - 10 + 1);
    for (let i = 0; i < N + 30_000; i += 1009) expect(t.has(uuid(i))).toBe(!(i >= 40_000 && i < 40_010));
  });

  it('answers as a Map does under any sequence of sets and deletes', async () => {
    // Few distinct ids, so sets and deletes hit the same keys; some not UUIDs.
    const ids = [...Array.from({ length: 40 }, (_, i) => uuid(i * 7919)), 'a', 'b', 'tx-1', uuid(5).toUpperCase()];
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), id: fc.constantFrom(...ids), at: fc.integer({ min: T0 - 1000, max: T0 + 1000 }), outcome: fc.constantFrom('commit' as const, 'abort' as const, undefined) }),
      fc.record({ kind: fc.constant('delete' as const), id: fc.constantFrom(...ids) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 3000 }), fc.integer({ min: T0 - 1000, max: T0 + 1000 }), async (ops, cutoff) => {
        const t = new OutcomeTable();
        const m = new Map<string, number>();
        for (const o of ops) {
          if (o.kind === 'set') {
            const packed = packOutcome(complete(o.id, o.at, o.outcome))!;
            t.setPacked(o.id, packed);
            m.set(o.id, packed);
          } else expect(t.delete(o.id)).toBe(m.delete(o.id));
        }
        expect(t.size).toBe(m.size);
        for (const id of ids) {
          expect(t.has(id)).toBe(m.has(id));
          expect(t.get(id)?.at).toBe(m.has(id) ? Math.floor(m.get(id)! / 4) : undefined);
        }
        // Map order, the non-UUID ids last.
        const uuidFirst = [...m].filter(([id]) => ids.indexOf(id) < 40).concat([...m].filter(([id]) => ids.indexOf(id) >= 40));
        const limit = cutoff * 4 + 3;
        const { forget, keptIds, keptPacked } = await t.partition(cutoff);
        expect(forget).toEqual(uuidFirst.filter(([, p]) => p <= limit).map(([id]) => id));
        expect(keptIds).toEqual(uuidFirst.filter(([, p]) => p > limit).map(([id]) => id));
        expect(keptPacked).toEqual(uuidFirst.filter(([, p]) => p > limit).map(([, p]) => p));
      }),
      { numRuns: 200 },
    );
  });
});
