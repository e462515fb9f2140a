import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { crc32, crc32Portable } from '../../coordinator/log/file/crc32';
import type { LogRecord } from '../../coordinator/engine/ports/decision-log';
import { encodeFrame, FRAME_HEADER_BYTES, scanFrames } from '../../coordinator/log/file/record-codec';
import { normalizeRecord, recordJson, recordProblem } from '../../coordinator/log/record-shape';

const record = (i: number) => ({ type: 'complete', txId: `tx-${i}-ünïcödé`, at: 1_700_000_000_000 + i });

describe('crc32', () => {
  it('matches the IEEE check value and the portable table implementation', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32Portable(Buffer.from('123456789'))).toBe(0xcbf43926);
    for (let i = 0; i < 50; i++) {
      const b = randomBytes(i * 37);
      expect(crc32Portable(b)).toBe(crc32(b));
    }
  });
});

describe('record framing', () => {
  const file = Buffer.concat([0, 1, 2, 3, 4].map((i) => encodeFrame(record(i))));
  const starts = scanFrames(file).frames.map((f) => f.offset);

  it('frames as [u32 length][u32 crc32][payload] and reads back every frame', () => {
    const scan = scanFrames(file);
    expect(scan.damages).toEqual([]);
    expect(scan.frames.map((f) => JSON.parse(f.payload.toString()))).toEqual([0, 1, 2, 3, 4].map(record));
    const first = scan.frames[0];
    expect(file.readUInt32BE(0)).toBe(first.payload.length);
    expect(file.readUInt32BE(4)).toBe(crc32(first.payload));
    expect(first.bytes).toBe(FRAME_HEADER_BYTES + first.payload.length);
  });

  it('calls damage with nothing valid after it a tail, at every cut point', () => {
    for (let cut = 1; cut < file.length; cut++) {
      const scan = scanFrames(file.subarray(0, cut));
      if (starts.includes(cut)) {
        expect(scan.damages).toEqual([]);
        continue;
      }
      const from = Math.max(...starts.filter((s) => s < cut));
      expect(scan.damages).toEqual([{ offset: from, bytes: cut - from, reason: expect.any(String), toEnd: true }]);
    }
  });

  it('finds the next valid frame after damage in the middle, and with `all` every damaged range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: file.length - 1 }), fc.integer({ min: 0, max: 7 }), (at, bit) => {
        const bad = Buffer.from(file);
        bad[at] ^= 1 << bit;
        const victim = Math.max(...starts.filter((s) => s <= at));
        const scan = scanFrames(bad, true);
        expect(scan.damages[0].offset).toBe(victim);
        const next = starts.find((s) => s > victim);
        if (next === undefined) {
          expect(scan.damages[0].toEnd).toBe(true);
        } else {
          expect(scan.damages).toEqual([{ offset: victim, bytes: next - victim, reason: expect.any(String), toEnd: false }]);
          expect(scan.frames.map((f) => f.offset)).toEqual(starts.filter((s) => s !== victim));
        }
      }),
    );
  });

  it('rejects zero-length frames, so zero-filled space is never read as records', () => {
    const scan = scanFrames(Buffer.concat([encodeFrame(record(0)), Buffer.alloc(64)]));
    expect(scan.frames).toHaveLength(1);
    expect(scan.damages).toEqual([expect.objectContaining({ toEnd: true, bytes: 64 })]);
  });

  it('refuses to frame a record over the size limit', () => {
    expect(() => encodeFrame({ big: 'x'.repeat(17 * 1024 * 1024) })).toThrow(expect.objectContaining({ code: 'invalid-input' }));
  });
});

describe('record serialization', () => {
  const str = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 });
  const num = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
  const branchArb = fc.record({ branchId: fc.nat(), gid: str, participant: str, url: fc.option(str, { nil: undefined }) });
  const recordArb: fc.Arbitrary<LogRecord> = fc.oneof(
    fc.record({ type: fc.constant('begin' as const), txId: str, at: num, expiresAt: num, metadata: fc.option(fc.dictionary(str, fc.jsonValue()), { nil: undefined }) }),
    fc.record({ type: fc.constant('enlist' as const), txId: str, at: num, branch: branchArb }),
    fc.record({
      type: fc.constant('decision' as const),
      txId: str,
      at: num,
      outcome: fc.constantFrom('commit' as const, 'abort' as const),
      source: fc.constantFrom('engine' as const, 'sweep' as const),
      branches: fc.array(branchArb, { maxLength: 4 }),
      reason: fc.option(fc.record({ cause: str, message: str, branchId: fc.option(fc.nat(), { nil: undefined }), sqlState: fc.option(str, { nil: undefined }) }), { nil: undefined }),
    }),
    fc.record({
      type: fc.constant('complete' as const),
      txId: str,
      at: num,
      outcome: fc.option(fc.constantFrom('commit' as const, 'abort' as const), { nil: undefined }),
      by: fc.option(str, { nil: undefined }),
    }),
    fc.record({ type: fc.constant('hazard' as const), txId: str, at: num, branchId: fc.nat(), gid: str, participant: str, detail: fc.string({ unit: 'binary' }) }),
    fc.record({
      type: fc.constant('action' as const),
      txId: str,
      at: num,
      by: str,
      action: fc.constantFrom('retry' as const, 'settle' as const),
      // An operator's note (settle): any text, quotes and control characters included.
      note: fc.option(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), { nil: undefined }),
    }),
  );

  it('writes exactly what JSON.stringify writes, and reads back the same record', () => {
    fc.assert(
      fc.property(recordArb, (r) => {
        expect(recordProblem(r)).toBeUndefined();
        const copy = normalizeRecord(r);
        const json = recordJson(copy);
        expect(json).toBe(JSON.stringify(copy));
        expect(JSON.parse(json)).toEqual(copy);
      }),
      { numRuns: 500 },
    );
  });
});
