import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileDecisionLog, type FileDecisionLogOptions } from '../../coordinator/log/file/file-decision-log';
import { FileLogCompactor } from '../../coordinator/log/file/file-log-compactor';
import { snapshotName } from '../../coordinator/log/file/log-layout';
import { nodeLogFs, type LogFs } from '../../coordinator/log/file/log-fs';
import { OutcomeTable } from '../../coordinator/log/outcome-table';
import { gcNow, settle } from '../support/live-heap';

/**
 * Issue 16, item 1: the file log's memory follows in-flight work, not
 * history. Completed transactions are held as outcome records of about 40
 * bytes (not as folded records of a few KiB), and a timer compacts an idle
 * log, so its memory and its directory shrink without an admin call.
 */

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twopc-log-memory-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const T0 = 1_700_000_000_000;
const uuid = (i: number) => `0190a1b2-c3d4-7e5f-8a9b-${i.toString(16).padStart(12, '0')}`;

async function completeMany(log: FileDecisionLog, from: number, count: number, at: (i: number) => number): Promise<void> {
  const writes: Array<Promise<unknown>> = [];
  for (let i = from; i < from + count; i++) {
    const txId = uuid(i);
    const branches = [{ branchId: 1, gid: `twopc_${i}_1`, participant: 'ledger', url: 'http://127.0.0.1:9/twopc' }, { branchId: 2, gid: `twopc_${i}_2`, participant: 'stock', url: 'http://127.0.0.1:9/twopc' }];
    writes.push(
      (async () => {
        await log.append({ type: 'begin', txId, at: at(i), expiresAt: at(i) + 30_000, metadata: { order: i } });
        for (const branch of branches) await log.append({ type: 'enlist', txId, at: at(i), branch });
        const outcome = i % 3 === 0 ? 'abort' : 'commit';
        await log.decide({ txId, at: at(i), outcome, source: 'engine', branches });
        await log.append({ type: 'complete', txId, at: at(i), outcome });
      })(),
    );
    if (writes.length >= 500) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
}


// What one outcome may cost, heap and array buffers together (docs/operations.md, Memory: about 40–45 measured).
const BYTES_PER_OUTCOME = 64;


describe('FileDecisionLog memory', () => {
  it('holds a completed transaction as its outcome record, within the documented budget (at most 64 bytes each)', async () => {
    const gc = gcNow();
    const dir = tempDir();
    const options: FileDecisionLogOptions = { dir, autoCompact: false, maxRetainedCompleted: 0, completedRetentionMs: 3_600_000, now: () => T0 + 1000 };
    const N = 40_000;
    const writer = new FileDecisionLog(options);
    await writer.open();
    await completeMany(writer, 0, N, () => T0);
    await writer.compact();
    expect(writer.held()).toEqual({ inFull: 0, outcomes: N });
    await writer.close();

    // A reopen reads N outcome records back from the snapshot: the heap grows by what holding them costs.
    // The OutcomeTable keeps its entries in typed arrays, whose memory is outside the JS heap: both count.
    const held = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    await settle(gc);
    const before = held();
    const log = new FileDecisionLog(options);
    await log.open();
    await settle(gc);
    const perOutcome = (held() - before) / N;
    if (process.env.TWOPC_PRINT_MEMORY) process.stdout.write(`bytes per outcome: ${perOutcome.toFixed(1)}\n`);
    expect(log.held()).toEqual({ inFull: 0, outcomes: N });
    expect(perOutcome).toBeLessThan(BYTES_PER_OUTCOME);
    // What a status read or a retried commit needs is all there.
    expect(await log.get(uuid(7))).toMatchObject({ txId: uuid(7), completed: true, completedAt: T0, outcome: 'commit' });
    expect(await log.get(uuid(9))).toMatchObject({ completed: true, outcome: 'abort' });
    await log.close();
  });

  it('brings an outcome back in full when a record is added to its transaction, and keeps both across compaction and reopen', async () => {
    const dir = tempDir();
    const options: FileDecisionLogOptions = { dir, autoCompact: false, maxRetainedCompleted: 0, completedRetentionMs: 3_600_000, now: () => T0 + 1000 };
    let log = new FileDecisionLog(options);
    await log.open();
    await completeMany(log, 0, 10, () => T0);
    await log.compact();
    expect(log.held()).toEqual({ inFull: 0, outcomes: 10 });
    // The register still answers the decision it took, though its record was reduced away: nothing replaces it.
    expect(await log.decide({ txId: uuid(1), at: T0 + 5, outcome: 'abort', source: 'recovery', branches: [] })).toMatchObject({ outcome: 'commit' });
    expect(await log.decide({ txId: uuid(3), at: T0 + 5, outcome: 'commit', source: 'recovery', branches: [] })).toMatchObject({ outcome: 'abort' });
    expect(log.held()).toEqual({ inFull: 0, outcomes: 10 });
    // A record added to one (a second `complete`, a hazard) brings it back in full.
    await log.append({ type: 'complete', txId: uuid(2), at: T0 + 6, outcome: 'commit' });
    await log.append({ type: 'hazard', txId: uuid(1), at: T0 + 7, branchId: 1, gid: 'twopc_1_1', participant: 'ledger', detail: 'found rolled back' });
    expect(log.held()).toEqual({ inFull: 2, outcomes: 8 });
    expect(await log.history(uuid(2))).toEqual([
      { type: 'complete', txId: uuid(2), at: T0, outcome: 'commit' },
      { type: 'complete', txId: uuid(2), at: T0 + 6, outcome: 'commit' },
    ]);
    const expected = [await log.get(uuid(1)), await log.get(uuid(2)), await log.get(uuid(3))];
    await log.compact();
    expect([await log.get(uuid(1)), await log.get(uuid(2)), await log.get(uuid(3))]).toEqual(expected);
    await log.close();
    log = new FileDecisionLog(options);
    await log.open();
    expect([await log.get(uuid(1)), await log.get(uuid(2)), await log.get(uuid(3))]).toEqual(expected);
    await log.close();
  });

  it('a compaction walks the outcomes over several turns; one brought back in full meanwhile stays in the snapshot', async () => {
    const dir = tempDir();
    const options: FileDecisionLogOptions = { dir, autoCompact: false, maxRetainedCompleted: 0, completedRetentionMs: 3_600_000, now: () => T0 + 1000 };
    let log = new FileDecisionLog(options);
    await log.open();
    const N = 45_000;
    await completeMany(log, 0, N, () => T0);
    await log.compact();
    expect(log.held().outcomes).toBe(N);
    // Something new, so the next compaction writes a new snapshot in place of this one.
    await completeMany(log, N, 1, () => T0);
    // Past the walk's first turns (it yields every 20,000 entries), a hazard arrives for one it has not reached.
    const late = uuid(N - 10);
    const partition = OutcomeTable.prototype.partition;
    const spy = jest.spyOn(OutcomeTable.prototype, 'partition').mockImplementation(function (this: OutcomeTable, at: number) {
      const walk = partition.call(this, at);
      setImmediate(() => void log.append({ type: 'hazard', txId: late, at: T0 + 9, branchId: 1, gid: 'twopc_x_1', participant: 'ledger', detail: 'late' }));
      return walk;
    });
    try {
      await log.compact();
    } finally {
      spy.mockRestore();
    }
    const expected = await log.get(late);
    expect(expected).toMatchObject({ completed: true, outcome: 'commit', hazards: [{ detail: 'late' }] });
    await log.close();
    log = new FileDecisionLog(options);
    await log.open();
    expect(await log.get(late)).toEqual(expected);
    expect(log.held().outcomes).toBe(N);
    await log.close();
  });

  it('compacts an idle log on a timer: completed transactions become outcomes, then go when retention ends, and the directory shrinks', async () => {
    const dir = tempDir();
    let now = T0;
    const log = new FileDecisionLog({ dir, segmentBytes: 1 << 20, compactIntervalMs: 50, maxRetainedCompleted: 100, completedRetentionMs: 60_000, now: () => now });
    await log.open();
    await completeMany(log, 0, 2_000, () => T0);
    const waitFor = async (what: () => boolean) => {
      for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 25));
      expect(what()).toBe(true);
    };
    // No segment sealed (1 MiB segments), no compaction asked for: the timer reduces them.
    await waitFor(() => log.held().outcomes === 1_900);
    expect(log.held().inFull).toBe(100);
    const snapshots = () => fs.readdirSync(dir).filter((f) => f.startsWith('snapshot-'));
    // Memory is updated before the superseded files are unlinked (a few awaits later): wait for those too.
    await waitFor(() => snapshots().length === 1);
    // Retention over: the timer forgets them all, though nothing was written since.
    now = T0 + 61_000;
    await waitFor(() => log.held().outcomes === 0 && log.held().inFull === 0);
    await waitFor(() => fs.statSync(path.join(dir, snapshots()[0])).size < 100);
    expect(await log.get(uuid(5))).toBeUndefined();
    await log.close();
    // The rewritten snapshot (under the same name) reads back.
    const again = new FileDecisionLog({ dir, autoCompact: false });
    expect((await again.open()).unfinished).toBe(0);
    expect(again.held()).toEqual({ inFull: 0, outcomes: 0 });
    expect(snapshots()).toEqual([snapshotName(Number(snapshots()[0].match(/\d+/)![0]))]);
    await again.close();
  });
  it('an idle log rewrites its snapshot to forget expired outcomes only once they are half of those held, not each time a few expire', async () => {
    const dir = tempDir();
    let now = T0;
    const INTERVAL = 3_600_000;
    // The timer's tick is driven by hand: its callback is taken from setInterval, whose real interval never ends in the test.
    const intervals = jest.spyOn(global, 'setInterval');
    const compactions = jest.spyOn(FileLogCompactor.prototype, 'compact');
    const log = new FileDecisionLog({ dir, compactIntervalMs: INTERVAL, maxRetainedCompleted: 0, completedRetentionMs: 60_000, now: () => now });
    try {
      await log.open();
      const tick = intervals.mock.calls.find((c) => c[1] === INTERVAL)![0] as () => void;
      await completeMany(log, 0, 2_000, (i) => T0 + i);
      const ticked = async (): Promise<boolean> => {
        const before = compactions.mock.calls.length;
        tick();
        if (compactions.mock.calls.length === before) return false;
        await compactions.mock.results.at(-1)!.value;
        return true;
      };
      now = T0 + 2_000;
      expect(await ticked()).toBe(true); // written since: reduced to outcomes
      expect(log.held()).toEqual({ inFull: 0, outcomes: 2_000 });
      // A quarter past retention, nothing written: no rewrite of the other 1,500; they are held a while longer.
      now = T0 + 60_000 + 499;
      expect(await ticked()).toBe(false);
      expect(log.held().outcomes).toBe(2_000);
      // Half past retention: one snapshot forgets them.
      now = T0 + 60_000 + 999;
      expect(await ticked()).toBe(true);
      expect(log.held().outcomes).toBe(1_000);
      expect(await log.get(uuid(999))).toBeUndefined();
      expect(await log.get(uuid(1_000))).toMatchObject({ completed: true });
      // A write since: the next tick forgets whatever expired, however few.
      now = T0 + 60_000 + 1_099;
      await completeMany(log, 5_000, 1, () => now);
      expect(await ticked()).toBe(true);
      expect(log.held().outcomes).toBe(901);
      // compactIfDue (what serve calls when it goes idle) decides as the timer does: nothing written, a few expired.
      now = T0 + 60_000 + 1_199;
      const before = compactions.mock.calls.length;
      await log.compactIfDue();
      expect(compactions.mock.calls.length).toBe(before);
      await completeMany(log, 5_001, 1, () => now);
      await log.compactIfDue();
      expect(compactions.mock.calls.length).toBe(before + 1);
      expect(log.held().outcomes).toBe(802);
    } finally {
      intervals.mockRestore();
      compactions.mockRestore();
      await log.close();
    }
  });
  it('writes a snapshot of many outcomes from one reused chunk buffer, not a new buffer per chunk and per frame, and it reads back', async () => {
    const dir = tempDir();
    const base = nodeLogFs();
    const snapshotFds = new Set<number>();
    const chunks: ArrayBufferLike[] = [];
    const lfs: LogFs = {
      ...base,
      open: async (file, flags) => {
        const fd = await base.open(file, flags);
        if (file.endsWith('.snap.tmp')) snapshotFds.add(fd);
        return fd;
      },
      close: (fd) => {
        snapshotFds.delete(fd);
        return base.close(fd);
      },
      write: (fd, buffer, offset, length, position) => {
        if (snapshotFds.has(fd)) chunks.push(buffer.buffer);
        return base.write(fd, buffer, offset, length, position);
      },
    };
    const options = { dir, fs: lfs, autoCompact: false, maxRetainedCompleted: 0, now: () => T0 + 1_000 };
    let log = new FileDecisionLog(options);
    await log.open();
    // About 90 bytes a frame: over 2 MiB of snapshot, three chunks at least.
    const N = 25_000;
    await completeMany(log, 0, N, () => T0);
    await log.compact();
    chunks.length = 0;
    // Nothing new: the second compaction writes every kept outcome from the outcome table.
    await completeMany(log, N, 1, () => T0);
    await log.compact();
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(new Set(chunks).size).toBe(1);
    await log.close();
    log = new FileDecisionLog({ dir, autoCompact: false, now: () => T0 + 1_000 });
    await log.open();
    expect(log.held().outcomes).toBe(N + 1);
    expect(await log.get(uuid(N - 1))).toMatchObject({ completed: true, outcome: (N - 1) % 3 === 0 ? 'abort' : 'commit' });
    await log.close();
  });
});
