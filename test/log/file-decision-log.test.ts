import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isTwopcError, type TwopcError } from '../../coordinator/engine/ports/protocol';
import type { DecisionRecord } from '../../coordinator/engine/ports/decision-log';
import { crc32Portable } from '../../coordinator/log/file/crc32';
import { FileDecisionLog, type FileDecisionLogOptions } from '../../coordinator/log/file/file-decision-log';
import { nodeLogFs, type LogFs } from '../../coordinator/log/file/log-fs';
import { segmentName, snapshotName } from '../../coordinator/log/file/log-layout';
import { encodeFrame, scanFrames } from '../../coordinator/log/file/record-codec';
import { describeDecisionLogConformance } from './conformance';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-file-log-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describeDecisionLogConformance('FileDecisionLog', async () => {
  const dir = tempDir();
  // Small segments, so the suite also runs across rotations and snapshots.
  return { create: (s) => new FileDecisionLog({ dir, segmentBytes: 4096, ...s }), destroy: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});

const T0 = 1_700_000_000_000;
const decision = (txId: string, outcome: 'commit' | 'abort' = 'commit'): Omit<DecisionRecord, 'type'> => ({
  txId,
  at: T0,
  outcome,
  source: 'engine',
  branches: [{ branchId: 1, gid: `twopc_${txId.replace(/[^a-z0-9]/g, '')}_1`, participant: 'ledger' }],
});

/** Counts calls to the seam and can hold fdatasync until released. */
function observedFs() {
  const base = nodeLogFs();
  const calls = { write: 0, fdatasync: 0, fsync: 0 };
  let gate: Promise<void> | undefined;
  let openGate = () => undefined as void;
  const lfs: LogFs = {
    ...base,
    write: (...a) => {
      calls.write++;
      return base.write(...a);
    },
    fdatasync: async (fd) => {
      calls.fdatasync++;
      if (gate) await gate;
      return base.fdatasync(fd);
    },
  };
  return {
    fs: lfs,
    calls,
    hold() {
      gate = new Promise<void>((r) => (openGate = r));
    },
    release() {
      gate = undefined;
      openGate();
    },
  };
}

async function openLog(options: Partial<FileDecisionLogOptions> & { dir: string }) {
  const log = new FileDecisionLog(options);
  const report = await log.open();
  return { log, report };
}

async function fill(log: FileDecisionLog, n: number, prefix = 'tx'): Promise<void> {
  for (let i = 0; i < n; i++) {
    await log.append({ type: 'begin', txId: `${prefix}-${i}`, at: T0 + i, expiresAt: T0 + i + 1000 });
    await log.decide(decision(`${prefix}-${i}`, i % 2 ? 'abort' : 'commit'));
  }
}

const settle = () => new Promise((r) => setTimeout(r, 20));
async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}
const segments = (dir: string) => fs.readdirSync(dir).filter((f) => f.startsWith('segment-')).sort();
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as TwopcError,
  );

describe('FileDecisionLog options', () => {
  it.each([
    [{ dir: '' }, 'dir', /dir must be a non-empty path/],
    [{ dir: '/tmp/x', segmentBytes: 100 }, 'segmentBytes', /segmentBytes must be >= 4096/],
    [{ dir: '/tmp/x', segmentBytes: 5000.5 }, 'segmentBytes', /segmentBytes must be an integer/],
    [{ dir: '/tmp/x', completedRetentionMs: -1 }, 'completedRetentionMs', /completedRetentionMs must be >= 0/],
    [{ dir: '/tmp/x', autoCompact: 'yes' }, 'autoCompact', /autoCompact must be a boolean/],
    [{ dir: '/tmp/x', fs: {} }, 'fs', /fs must be an object with the methods/],
    [{ dir: '/tmp/x', segmentSize: 4096 }, 'segmentSize', /unknown option\(s\) segmentSize/],
    [{}, 'dir', /dir must be a string/],
  ])('rejects %j naming %s', (options, field, message) => {
    let error: unknown;
    try {
      new FileDecisionLog(options as FileDecisionLogOptions);
    } catch (e) {
      error = e;
    }
    expect(isTwopcError(error, 'invalid-config')).toBe(true);
    expect((error as TwopcError).details.field).toBe(field);
    expect((error as Error).message).toMatch(message);
  });
});

describe('FileDecisionLog files', () => {
  it('creates a missing directory, holds LOCK while open, frames records with length and CRC32', async () => {
    const dir = path.join(tempDir(), 'nested', 'data');
    const { log } = await openLog({ dir });
    expect(fs.readdirSync(dir).sort()).toEqual(['LOCK', segmentName(1)]);
    await log.append({ type: 'begin', txId: 'tx-1', at: T0, expiresAt: T0 + 1000 });
    const d = await log.decide(decision('tx-1'));
    await log.close();
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);

    const buf = fs.readFileSync(path.join(dir, segmentName(1)));
    const length = buf.readUInt32BE(0);
    const payload = buf.subarray(8, 8 + length);
    expect(buf.readUInt32BE(4)).toBe(crc32Portable(payload));
    expect(JSON.parse(payload.toString())).toEqual({ type: 'begin', txId: 'tx-1', at: T0, expiresAt: T0 + 1000 });
    const second = buf.subarray(8 + length);
    expect(JSON.parse(second.subarray(8).toString())).toEqual(d);
    expect(second.length).toBe(8 + second.readUInt32BE(0));
  });

  it('keeps its own copy: changing an object after the call changes nothing', async () => {
    const { log } = await openLog({ dir: tempDir() });
    const metadata = { amount: 10 };
    await log.append({ type: 'begin', txId: 'tx-m', at: T0, expiresAt: T0, metadata });
    metadata.amount = 1_000_000;
    const input = decision('tx-m');
    const d = await log.decide(input);
    input.branches[0].participant = 'elsewhere';
    expect((await log.get('tx-m'))!.metadata).toEqual({ amount: 10 });
    expect(d.branches[0].participant).toBe('ledger');
    expect(Object.isFrozen(d)).toBe(true);
    await log.close();
  });

  it('rotates segments at segmentBytes and replays all of them', async () => {
    const dir = tempDir();
    const { log } = await openLog({ dir, segmentBytes: 4096, autoCompact: false });
    await fill(log, 60);
    await log.close();
    const files = segments(dir);
    expect(files.length).toBeGreaterThan(3);
    for (const f of files.slice(0, -1)) expect(fs.statSync(path.join(dir, f)).size).toBeLessThanOrEqual(4096);
    const again = await openLog({ dir, segmentBytes: 4096, autoCompact: false });
    expect(again.report.records).toBe(120);
    expect(again.report.tornTail).toBeUndefined();
    expect((await again.log.get('tx-59'))!.decision!.outcome).toBe('abort');
    await again.log.close();
  });

  it('a close() racing open() waits for it and releases the lock', async () => {
    const dir = tempDir();
    const log = new FileDecisionLog({ dir });
    const opened = log.open();
    const closed = log.close();
    await opened;
    await closed;
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
    await expect(log.get('tx')).rejects.toMatchObject({ code: 'log-unavailable' });
  });

  it('refuses a second open() on the same instance', async () => {
    const { log } = await openLog({ dir: tempDir() });
    await expect(log.open()).rejects.toMatchObject({ code: 'log-unavailable' });
    await log.close();
  });
});

describe('FileDecisionLog reading back', () => {
  async function closedLog(n = 6) {
    const dir = tempDir();
    const { log } = await openLog({ dir });
    await fill(log, n);
    await log.close();
    const file = path.join(dir, segmentName(1));
    const frames = scanFrames(fs.readFileSync(file)).frames;
    return { dir, file, frames, size: fs.statSync(file).size };
  }

  const tails: [string, (file: string, frames: ReturnType<typeof scanFrames>['frames']) => number][] = [
    ['a partial frame header', (file) => (fs.appendFileSync(file, Buffer.from([0, 0, 1])), 3)],
    [
      'a frame cut in its payload',
      (file) => {
        const frame = encodeFrame({ type: 'complete', txId: 'tx-0', at: T0 });
        fs.appendFileSync(file, frame.subarray(0, frame.length - 7));
        return frame.length - 7;
      },
    ],
    ['zeroes (a preallocated or unwritten tail)', (file) => (fs.appendFileSync(file, Buffer.alloc(4096)), 4096)],
  ];

  it.each(tails)('cuts a torn tail of %s and reports it', async (_name, tear) => {
    const { dir, file, size, frames } = await closedLog();
    const torn = tear(file, frames);
    const { log, report } = await openLog({ dir });
    expect(report.tornTail).toEqual({ file, offset: size, bytes: torn });
    expect(report.records).toBe(12);
    expect(fs.statSync(file).size).toBe(size);
    await log.append({ type: 'complete', txId: 'tx-0', at: T0 });
    await log.close();
    const again = await openLog({ dir });
    expect(again.report.tornTail).toBeUndefined();
    expect((await again.log.get('tx-0'))!.completed).toBe(true);
    await again.log.close();
  });

  it('treats a checksum mismatch in the final record, with nothing after it, as a torn tail', async () => {
    const { dir, file, frames, size } = await closedLog();
    const last = frames[frames.length - 1];
    const buf = fs.readFileSync(file);
    buf[last.offset + 20] ^= 0x01;
    fs.writeFileSync(file, buf);
    const { log, report } = await openLog({ dir });
    expect(report.tornTail).toEqual({ file, offset: last.offset, bytes: size - last.offset });
    expect(report.records).toBe(11);
    expect((await log.get('tx-5'))!.decision).toBeUndefined();
    await log.close();
  });

  it('refuses to open on damage in the middle of the last segment, naming file and offset', async () => {
    const { dir, file, frames } = await closedLog();
    const victim = frames[3];
    const buf = fs.readFileSync(file);
    buf[victim.offset + 12] ^= 0x40;
    fs.writeFileSync(file, buf);
    const error = await errorOf(openLog({ dir }));
    expect(isTwopcError(error, 'log-corrupt')).toBe(true);
    expect(error!.details).toMatchObject({ file, offset: victim.offset });
    expect(error!.message).toContain(file);
    expect(error!.message).toContain(`offset ${victim.offset}`);
    // Nothing was cut, and the lock was released.
    expect(fs.readFileSync(file)).toEqual(buf);
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
  });

  it('refuses to open on damage at the end of a sealed segment', async () => {
    const dir = tempDir();
    const { log } = await openLog({ dir, segmentBytes: 4096, autoCompact: false });
    await fill(log, 40);
    await log.close();
    const file = path.join(dir, segments(dir)[0]);
    const frames = scanFrames(fs.readFileSync(file)).frames;
    const last = frames[frames.length - 1];
    const buf = fs.readFileSync(file);
    buf[last.offset + 9] ^= 0x02;
    fs.writeFileSync(file, buf);
    const error = await errorOf(openLog({ dir, segmentBytes: 4096 }));
    expect(error?.code).toBe('log-corrupt');
    expect(error!.details).toMatchObject({ file, offset: last.offset });
  });

  it('refuses a record whose checksum matches but whose body is not a record', async () => {
    const { dir, file } = await closedLog();
    fs.appendFileSync(file, encodeFrame({ type: 'bogus', txId: 'x', at: 1 }));
    const error = await errorOf(openLog({ dir }));
    expect(error?.code).toBe('log-corrupt');
    expect(error!.message).toMatch(/malformed: type must be one of/);
  });

  it('refuses to open when a segment is missing', async () => {
    const dir = tempDir();
    const { log } = await openLog({ dir, segmentBytes: 4096, autoCompact: false });
    await fill(log, 40);
    await log.close();
    fs.unlinkSync(path.join(dir, segmentName(2)));
    const error = await errorOf(openLog({ dir }));
    expect(error?.code).toBe('log-corrupt');
    expect(error!.message).toContain(segmentName(2));
  });
});

describe('FileDecisionLog durability and group commit', () => {
  it('resolves a commit only after fdatasync; aborts and appends without one', async () => {
    const o = observedFs();
    const { log } = await openLog({ dir: tempDir(), fs: o.fs });
    const base = o.calls.fdatasync;
    await log.append({ type: 'begin', txId: 'tx-a', at: T0, expiresAt: T0 });
    await log.decide(decision('tx-a', 'abort'));
    expect(o.calls.fdatasync).toBe(base);

    o.hold();
    let resolved = false;
    const commit = log.decide(decision('tx-c')).then((d) => ((resolved = true), d));
    await waitFor(() => o.calls.fdatasync === base + 1);
    await settle();
    expect(resolved).toBe(false);
    // Racing deciders wait for the same durable winner.
    const racer = log.decide(decision('tx-c', 'abort'));
    await settle();
    expect(resolved).toBe(false);
    o.release();
    const [d, r] = await Promise.all([commit, racer]);
    expect(d.outcome).toBe('commit');
    expect(r).toEqual(d);
    await log.close();
  });

  it('shares one write and one fdatasync among concurrent forced decisions', async () => {
    const o = observedFs();
    const { log } = await openLog({ dir: tempDir(), fs: o.fs });
    const before = { ...o.calls };
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.decide(decision(`tx-${i}`))));
    expect(o.calls.write - before.write).toBe(1);
    expect(o.calls.fdatasync - before.fdatasync).toBe(1);

    // Records arriving while a sync is in flight are written at once (in one write) but
    // acknowledged only by the next sync, which starts after that write returned.
    o.hold();
    const first = log.decide(decision('tx-first'));
    await waitFor(() => o.calls.fdatasync - before.fdatasync === 2);
    let acknowledged = 0;
    const more = Array.from({ length: 50 }, (_, i) => log.decide(decision(`tx-more-${i}`)).then(() => acknowledged++));
    await settle();
    expect(o.calls.write - before.write).toBe(3);
    expect(o.calls.fdatasync - before.fdatasync).toBe(2);
    expect(acknowledged).toBe(0);
    o.release();
    await Promise.all([first, ...more]);
    expect(o.calls.write - before.write).toBe(3);
    expect(o.calls.fdatasync - before.fdatasync).toBe(3);
    await log.close();
  });

  it('with groupCommit off, syncs every forced decision on its own', async () => {
    const o = observedFs();
    const { log } = await openLog({ dir: tempDir(), fs: o.fs, groupCommit: false });
    const before = o.calls.fdatasync;
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.decide(decision(`tx-${i}`))));
    expect(o.calls.fdatasync - before).toBe(20);
    await log.close();
  });

  it('syncs what it reads back at open, so a decision recovery acts on is durable', async () => {
    const dir = tempDir();
    const { log } = await openLog({ dir });
    await log.decide(decision('tx-1'));
    await log.close();
    const o = observedFs();
    const fsyncs: number[] = [];
    const again = await openLog({ dir, fs: { ...o.fs, fsync: (fd) => (fsyncs.push(fd), o.fs.fsync(fd)) } });
    expect(fsyncs.length).toBeGreaterThanOrEqual(1);
    await again.log.close();
  });
});

describe('FileDecisionLog compaction', () => {
  const lifecycle = async (log: FileDecisionLog, txId: string, complete: boolean) => {
    await log.append({ type: 'begin', txId, at: T0, expiresAt: T0 + 1000 });
    await log.append({ type: 'enlist', txId, at: T0, branch: { branchId: 1, gid: `twopc_${txId.replace(/-/g, '')}_1`, participant: 'ledger' } });
    await log.decide(decision(txId));
    if (complete) await log.append({ type: 'complete', txId, at: T0 });
  };

  async function compactedDir() {
    const dir = tempDir();
    const { log } = await openLog({ dir, segmentBytes: 4096, autoCompact: false, completedRetentionMs: 0 });
    for (let i = 0; i < 40; i++) await lifecycle(log, `tx-${i}`, i % 4 !== 0);
    return { dir, log };
  }

  async function historyOf(dir: string, txIds: string[]) {
    const { log, report } = await openLog({ dir, segmentBytes: 4096, autoCompact: false });
    const out = new Map<string, unknown>();
    for (const tx of txIds) out.set(tx, await log.history(tx));
    await log.close();
    return { out, report };
  }
  const ids = Array.from({ length: 40 }, (_, i) => `tx-${i}`);

  it('ignores and removes a snapshot temp file a crash left before its rename', async () => {
    const { dir, log } = await compactedDir();
    await log.close();
    const expected = await historyOf(dir, ids);
    fs.writeFileSync(path.join(dir, `${snapshotName(3)}.tmp`), 'half a snapshot');
    const got = await historyOf(dir, ids);
    expect(got.out).toEqual(expected.out);
    expect(fs.readdirSync(dir).some((f) => f.endsWith('.tmp'))).toBe(false);
  });

  it('loses nothing when the rename into place fails (crash before install)', async () => {
    const { dir, log } = await compactedDir();
    const expected = new Map<string, unknown>();
    for (const tx of ids) expected.set(tx, await log.history(tx));
    await log.close();
    const base = nodeLogFs();
    const failing = new FileDecisionLog({
      dir,
      segmentBytes: 4096,
      autoCompact: false,
      completedRetentionMs: 0,
      fs: { ...base, rename: async () => Promise.reject(Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' })) },
    });
    await failing.open();
    await expect(failing.compact()).rejects.toMatchObject({ code: 'log-unavailable', details: { operation: 'compact' } });
    // Compaction failing leaves the log itself usable.
    await failing.decide(decision('tx-after'));
    await failing.close();
    const got = await historyOf(dir, [...ids, 'tx-after']);
    for (const tx of ids) expect(got.out.get(tx)).toEqual(expected.get(tx));
    expect((got.out.get('tx-after') as unknown[]).length).toBe(1);
  });

  it('replays nothing twice when a crash leaves covered segments behind the snapshot', async () => {
    const { dir, log } = await compactedDir();
    await log.close();
    const base = nodeLogFs();
    const stuck = new FileDecisionLog({
      dir,
      segmentBytes: 4096,
      autoCompact: false,
      completedRetentionMs: 60_000,
      now: () => T0,
      fs: { ...base, unlink: async (p) => (p.includes('segment-') ? Promise.reject(Object.assign(new Error('EIO: i/o error, unlink'), { code: 'EIO' })) : base.unlink(p)) },
    });
    await stuck.open();
    const expected = new Map<string, unknown>();
    for (const tx of ids) expected.set(tx, await stuck.history(tx));
    await expect(stuck.compact()).rejects.toMatchObject({ code: 'log-unavailable' });
    await stuck.close();
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('snapshot-'))).toHaveLength(1);
    const leftover = segments(dir).length;
    const got = await historyOf(dir, ids);
    expect(got.out).toEqual(expected);
    expect(segments(dir).length).toBeLessThan(leftover);
  });

  it('uses the newest snapshot when an older one was not yet deleted', async () => {
    const { dir, log } = await compactedDir();
    await log.compact();
    const older = fs.readdirSync(dir).find((f) => f.startsWith('snapshot-'))!;
    const olderBytes = fs.readFileSync(path.join(dir, older));
    await lifecycle(log, 'tx-late', false);
    await log.compact();
    const expected = new Map<string, unknown>();
    for (const tx of [...ids, 'tx-late']) expected.set(tx, await log.history(tx));
    await log.close();
    expect(fs.existsSync(path.join(dir, older))).toBe(false);
    fs.writeFileSync(path.join(dir, older), olderBytes);
    const got = await historyOf(dir, [...ids, 'tx-late']);
    expect(got.out).toEqual(expected);
    expect(fs.existsSync(path.join(dir, older))).toBe(false);
  });

  it('refuses to open on a damaged snapshot, naming it', async () => {
    const { dir, log } = await compactedDir();
    await log.compact();
    await log.close();
    const snap = path.join(dir, fs.readdirSync(dir).find((f) => f.startsWith('snapshot-'))!);
    const buf = fs.readFileSync(snap);
    const frames = scanFrames(buf).frames;
    buf[frames[frames.length - 1].offset + 10] ^= 0x10;
    fs.writeFileSync(snap, buf);
    const error = await errorOf(openLog({ dir }));
    expect(error?.code).toBe('log-corrupt');
    expect(error!.details).toMatchObject({ file: snap, offset: frames[frames.length - 1].offset });
  });

  it('keeps records written while a compaction runs, exactly once', async () => {
    const dir = tempDir();
    const { log } = await openLog({ dir, segmentBytes: 4096, completedRetentionMs: 0 });
    for (let i = 0; i < 30; i++) await lifecycle(log, `tx-${i}`, i % 2 === 0);
    const inFlight: Promise<unknown>[] = [];
    for (let i = 30; i < 130; i++) inFlight.push(lifecycle(log, `tx-${i}`, i % 2 === 0));
    const compactions = [log.compact(), log.compact()];
    await Promise.all([...inFlight, ...compactions]);
    const expected = new Map<string, unknown>();
    for (let i = 0; i < 130; i++) expected.set(`tx-${i}`, await log.history(`tx-${i}`));
    await log.close();
    const got = await historyOf(dir, [...expected.keys()]);
    expect(got.out).toEqual(expected);
    for (let i = 1; i < 130; i += 2) expect((got.out.get(`tx-${i}`) as unknown[]).length).toBe(3);
  });

  it('keeps at most maxRetainedCompleted completed transactions in full; the others keep their outcome record until retention ends', async () => {
    const dir = tempDir();
    let now = T0 + 10_000;
    const options = { dir, autoCompact: false, completedRetentionMs: 60_000, maxRetainedCompleted: 10, now: () => now };
    let { log } = await openLog(options);
    for (let i = 0; i < 50; i++) {
      await log.decide(decision(`tx-${i}`, i % 3 === 0 ? 'abort' : 'commit'));
      // Completed in reverse order: tx-0 completes last.
      if (i % 5 !== 4) await log.append({ type: 'complete', txId: `tx-${i}`, at: T0 + 1000 - i, outcome: i % 3 === 0 ? 'abort' : 'commit' });
    }
    const report = await log.compact();
    expect(report.forgotten).toBe(0);
    const full: number[] = [];
    for (let i = 0; i < 50; i++) if ((await log.history(`tx-${i}`))[0].type !== 'complete') full.push(i);
    // The ten completed last (0-3, 5-8, 10, 11) and every unfinished one (i % 5 === 4) in full.
    expect(full).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 19, 24, 29, 34, 39, 44, 49]);
    const check = async () => {
      for (let i = 0; i < 50; i++) {
        if (i % 5 === 4) continue;
        const outcome = i % 3 === 0 ? 'abort' : 'commit';
        expect(await log.get(`tx-${i}`)).toMatchObject({ completed: true, completedAt: T0 + 1000 - i, outcome });
        if (!full.includes(i)) expect(await log.history(`tx-${i}`)).toEqual([{ type: 'complete', txId: `tx-${i}`, at: T0 + 1000 - i, outcome }]);
      }
    };
    await check();
    // A second compaction leaves outcome records as they are; a reopen reads them back from the snapshot.
    expect((await log.compact()).forgotten).toBe(0);
    await check();
    await log.close();
    ({ log } = await openLog(options));
    await check();
    // Once retention is over they go, like every completed transaction.
    now += 120_000;
    await log.decide(decision('tx-later'));
    expect((await log.compact()).forgotten).toBe(40);
    for (let i = 0; i < 50; i++) expect((await log.get(`tx-${i}`)) === undefined).toBe(i % 5 !== 4);
    await log.close();
  });

  it('bounds the directory by in-flight work, not history, with autoCompact', async () => {
    const dir = tempDir();
    let bytesWritten = 0;
    const base = nodeLogFs();
    const counting: LogFs = { ...base, write: async (fd, b, o, l, p) => ((bytesWritten += l), base.write(fd, b, o, l, p)) };
    const { log } = await openLog({ dir, segmentBytes: 64 * 1024, completedRetentionMs: 0, fs: counting });
    const dirBytes = () => fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
    let peak = 0;
    const workers = Array.from({ length: 50 }, async (_, w) => {
      for (let i = 0; i < 400; i++) {
        const txId = `tx-${w}-${i}`;
        await lifecycle(log, txId, true);
        if (i % 100 === 0) peak = Math.max(peak, dirBytes());
      }
    });
    await Promise.all(workers);
    await log.close();
    const final = dirBytes();
    // 20,000 transactions wrote megabytes of records; the directory keeps a few segments.
    expect(bytesWritten).toBeGreaterThan(8 * 1024 * 1024);
    expect(peak).toBeLessThan(6 * 64 * 1024);
    expect(final).toBeLessThan(6 * 64 * 1024);
    const again = await openLog({ dir, segmentBytes: 64 * 1024, completedRetentionMs: 0 });
    expect(again.report.unfinished).toBe(0);
    expect(again.report.records).toBeLessThan(2000);
    await again.log.close();
  });
});
