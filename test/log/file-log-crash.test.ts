import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { TwopcError } from '../../coordinator/engine/ports/protocol';
import type { DecisionRecord, LogRecord, OpenReport } from '../../coordinator/engine/ports/decision-log';
import { FileDecisionLog } from '../../coordinator/log/file/file-decision-log';
import { nodeLogFs, type LogFs } from '../../coordinator/log/file/log-fs';
import { scanFrames } from '../../coordinator/log/file/record-codec';

const TXS = 6;
const KINDS = ['begin', 'enlist', 'commit', 'abort', 'complete', 'hazard', 'compact'] as const;
type Kind = (typeof KINDS)[number];
interface Op {
  kind: Kind;
  tx: number;
  /** Runs concurrently with the previous op (same group) rather than after it. */
  join: boolean;
}

const opArb = fc.record({
  kind: fc.constantFrom(...KINDS, 'begin', 'enlist', 'commit', 'abort', 'complete'),
  tx: fc.integer({ min: 0, max: TXS - 1 }),
  join: fc.boolean(),
});
const scenarioArb = fc.record({
  ops: fc.array(opArb, { minLength: 1, maxLength: 50 }),
  // 0: compaction forgets completed transactions; huge: it only moves records into the snapshot.
  retentionMs: fc.constantFrom(0, 1e12),
});

const dirs: string[] = [];
function tempDir(tag: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twopc-crash-${tag}-`));
  dirs.push(dir);
  return dir;
}
function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}
afterAll(() => {
  for (const d of dirs) removeDir(d);
});

/** node's fs, remembering for each file how many bytes the last successful fsync/fdatasync covered. */
function syncTrackingFs() {
  const base = nodeLogFs();
  const paths = new Map<number, string>();
  const size = new Map<string, number>();
  const synced = new Map<string, number>();
  const sync = (call: (fd: number) => Promise<void>) => async (fd: number) => {
    const p = paths.get(fd);
    const covered = p === undefined ? 0 : (size.get(p) ?? 0);
    await call(fd);
    if (p !== undefined) synced.set(p, covered);
  };
  const lfs: LogFs = {
    ...base,
    open: async (p, flags) => {
      const fd = await base.open(p, flags);
      paths.set(fd, p);
      if (!size.has(p) || flags.startsWith('w')) size.set(p, (await base.fstat(fd)).size);
      return fd;
    },
    write: async (fd, buffer, offset, length, position) => {
      const n = await base.write(fd, buffer, offset, length, position);
      const p = paths.get(fd);
      if (p !== undefined) size.set(p, Math.max(size.get(p) ?? 0, position + n));
      return n;
    },
    fdatasync: sync(base.fdatasync),
    fsync: sync(base.fsync),
  };
  return { fs: lfs, synced };
}

const T0 = 1_700_000_000_000;
const txId = (n: number) => `tx-${n}`;
const branch = (n: number, b: number) => ({ branchId: b, gid: `twopc_tx${n}_${b}`, participant: `db${b}` });

interface Run {
  dir: string;
  log: FileDecisionLog;
  /** Commit decisions whose decide() resolved, with what the sync tracker knew at that moment. */
  acked: { record: DecisionRecord; synced: Map<string, number> }[];
}

async function runOps(ops: Op[], retentionMs: number, tracked = true): Promise<Run> {
  const dir = tempDir('live');
  const tracker = syncTrackingFs();
  const log = new FileDecisionLog({ dir, segmentBytes: 4096, autoCompact: false, completedRetentionMs: retentionMs, fs: tracked ? tracker.fs : nodeLogFs() });
  await log.open();
  const acked: Run['acked'] = [];
  const enlisted = new Map<number, number>();
  const start = (op: Op): Promise<unknown> => {
    const id = txId(op.tx);
    switch (op.kind) {
      case 'begin':
        return log.append({ type: 'begin', txId: id, at: T0, expiresAt: T0 + 1000, metadata: { n: op.tx } });
      case 'enlist': {
        const b = (enlisted.get(op.tx) ?? 0) + 1;
        enlisted.set(op.tx, b);
        return log.append({ type: 'enlist', txId: id, at: T0, branch: branch(op.tx, b) });
      }
      case 'commit':
      case 'abort':
        return log.decide({ txId: id, at: T0, outcome: op.kind, source: 'engine', branches: [branch(op.tx, 1)] }).then((record) => {
          if (record.outcome === 'commit') acked.push({ record, synced: new Map(tracker.synced) });
        });
      case 'complete':
        return log.append({ type: 'complete', txId: id, at: T0 });
      case 'hazard':
        return log.append({ type: 'hazard', txId: id, at: T0, branchId: 1, gid: branch(op.tx, 1).gid, participant: 'db1', detail: 'injected' });
      case 'compact':
        return log.compact();
    }
  };
  let group: Promise<unknown>[] = [];
  for (const op of ops) {
    if (!op.join) {
      await Promise.all(group);
      group = [];
    }
    group.push(start(op));
  }
  await Promise.all(group);
  return { dir, log, acked };
}

/** What the live log says, per transaction. */
async function histories(log: FileDecisionLog): Promise<Map<string, LogRecord[]>> {
  const out = new Map<string, LogRecord[]>();
  for (let n = 0; n < TXS; n++) out.set(txId(n), await log.history(txId(n)));
  return out;
}

/** The log's files as a crash leaves them: everything but the lock of the dead process. */
function crashCopy(from: string): string {
  const to = tempDir('copy');
  for (const f of fs.readdirSync(from)) if (!f.startsWith('LOCK')) fs.copyFileSync(path.join(from, f), path.join(to, f));
  return to;
}

const lastSegment = (dir: string) =>
  path.join(
    dir,
    fs
      .readdirSync(dir)
      .filter((f) => f.startsWith('segment-'))
      .sort()
      .at(-1)!,
  );

function expectPrefix(after: LogRecord[], before: LogRecord[]): void {
  expect(after.length).toBeLessThanOrEqual(before.length);
  expect(after).toEqual(before.slice(0, after.length));
}

async function reopenChecked(dir: string, retentionMs: number): Promise<{ log: FileDecisionLog; report: OpenReport }> {
  const log = new FileDecisionLog({ dir, segmentBytes: 4096, autoCompact: false, completedRetentionMs: retentionMs });
  const report = await log.open();
  return { log, report };
}

/**
 * Truncates the crash copy's last segment at `cut` and checks what open()
 * makes of it: the torn tail is reported exactly, every transaction's history
 * is a prefix of what the live log had, and the log then continues cleanly.
 */
async function checkCrash(run: Run, before: Map<string, LogRecord[]>, retentionMs: number, pick: (low: number, size: number) => number, ackedMustSurvive: boolean) {
  const copy = crashCopy(run.dir);
  const file = lastSegment(copy);
  const original = fs.readFileSync(file);
  const liveFile = path.join(run.dir, path.basename(file));
  // Lower bound of a crash: what was synced when the last commit was acknowledged.
  const lastAck = run.acked.at(-1);
  const low = ackedMustSurvive && lastAck ? Math.min(lastAck.synced.get(liveFile) ?? 0, original.length) : 0;
  const cut = pick(low, original.length);
  fs.truncateSync(file, cut);

  const starts = scanFrames(original).frames.map((f) => f.offset);
  const torn = cut < original.length && !starts.includes(cut);
  const { log, report } = await reopenChecked(copy, retentionMs);
  try {
    if (torn) {
      const from = Math.max(...starts.filter((s) => s < cut));
      expect(report.tornTail).toEqual({ file, offset: from, bytes: cut - from });
    } else {
      expect(report.tornTail).toBeUndefined();
    }
    for (const [tx, records] of before) expectPrefix(await log.history(tx), records);
    if (ackedMustSurvive) {
      for (const { record } of run.acked) {
        // Only if the live log still had it (not since forgotten by compaction).
        if (before.get(record.txId)!.includes(record)) expect((await log.get(record.txId))!.decision).toEqual(record);
      }
    }
    // The cut log takes new records and reads back clean.
    await log.append({ type: 'complete', txId: 'tx-after-crash', at: T0 });
  } finally {
    await log.close();
  }
  const again = await reopenChecked(copy, retentionMs);
  expect(again.report.tornTail).toBeUndefined();
  expect(await again.log.history('tx-after-crash')).toHaveLength(1);
  await again.log.close();
  removeDir(copy);
}

describe('FileDecisionLog crash properties', () => {
  it('keeps every acknowledged commit when a crash cuts what was not yet synced', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, fc.nat(), async ({ ops, retentionMs }, r) => {
        const run = await runOps(ops, retentionMs);
        try {
          const before = await histories(run.log);
          await checkCrash(run, before, retentionMs, (low, size) => low + (r % (size - low + 1)), true);
        } finally {
          await run.log.close();
          removeDir(run.dir);
        }
      }),
      { numRuns: 30 },
    );
  });

  it('returns nothing partial or corrupt when the last segment is cut anywhere', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, fc.nat(), async ({ ops, retentionMs }, r) => {
        const run = await runOps(ops, retentionMs, false);
        try {
          const before = await histories(run.log);
          await checkCrash(run, before, retentionMs, (_low, size) => r % (size + 1), false);
        } finally {
          await run.log.close();
          removeDir(run.dir);
        }
      }),
      { numRuns: 30 },
    );
  });

  it('refuses to open, naming file and offset, when any byte of a record before the tail flips', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, fc.nat(), fc.nat(), fc.integer({ min: 0, max: 7 }), async ({ ops, retentionMs }, pickFrame, pickByte, bit) => {
        const run = await runOps(ops, retentionMs, false);
        await run.log.close();
        const copy = crashCopy(run.dir);
        removeDir(run.dir);
        try {
          const names = fs.readdirSync(copy).sort();
          const last = names.filter((f) => f.startsWith('segment-')).at(-1);
          const candidates = names.flatMap((name) => {
            const frames = scanFrames(fs.readFileSync(path.join(copy, name))).frames;
            return frames.map((f, i) => ({ name, frame: f, isTail: name === last && i === frames.length - 1 }));
          });
          fc.pre(candidates.length > 0);
          const victim = candidates[pickFrame % candidates.length];
          const file = path.join(copy, victim.name);
          const buf = fs.readFileSync(file);
          buf[victim.frame.offset + (pickByte % victim.frame.bytes)] ^= 1 << bit;
          fs.writeFileSync(file, buf);

          const log = new FileDecisionLog({ dir: copy, segmentBytes: 4096, autoCompact: false });
          const outcome = await log.open().then(
            (report) => ({ report }),
            (error: TwopcError) => ({ error }),
          );
          if (victim.isTail) {
            // The final record of the last segment with nothing after it: a torn tail, cut and reported.
            expect('report' in outcome && outcome.report.tornTail).toEqual({ file, offset: victim.frame.offset, bytes: victim.frame.bytes });
            await log.close();
          } else {
            expect('error' in outcome && outcome.error.code).toBe('log-corrupt');
            expect('error' in outcome && outcome.error.details).toMatchObject({ file, offset: victim.frame.offset });
          }
        } finally {
          removeDir(copy);
        }
      }),
      { numRuns: 40 },
    );
  });
});

// A process that decides, completes and compacts as fast as it can, printing
// each commit once decide() has resolved. SIGKILL lands wherever it lands:
// mid-write, mid-rotation, mid-compaction.
const WRITER = `
const { FileDecisionLog } = require(${JSON.stringify(path.resolve(__dirname, '../../coordinator/log/file/file-decision-log.ts'))});
const log = new FileDecisionLog({ dir: process.env.LOG_DIR, segmentBytes: 8192, completedRetentionMs: 0 });
log.open().then(async () => {
  let n = 0;
  const worker = async (w) => {
    for (;;) {
      const i = n++;
      const txId = 'tx-' + w + '-' + i;
      // Every third transaction stays unfinished, so compaction has something to keep.
      const keep = i % 3 === 0;
      await log.append({ type: 'begin', txId, at: Date.now(), expiresAt: Date.now() + 1000 });
      const d = await log.decide({ txId, at: Date.now(), outcome: 'commit', source: 'engine', branches: [] });
      process.stdout.write(JSON.stringify({ txId, at: d.at, keep }) + '\\n');
      if (!keep) await log.append({ type: 'complete', txId, at: Date.now() });
      if (i % 500 === 0) log.compact().catch(() => undefined);
    }
  };
  for (let w = 0; w < 16; w++) worker(w);
});
`;

describe('FileDecisionLog under SIGKILL', () => {
  it('keeps every commit a killed process acknowledged', async () => {
    const dir = tempDir('kill');
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', WRITER], {
      cwd: path.resolve(__dirname, '../..'),
      env: { ...process.env, LOG_DIR: dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const target = 2000 + Math.floor(Math.random() * 2000);
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    child.stdout.on('data', (d) => {
      out += d;
      if (out.split('\n').length > target) child.kill('SIGKILL');
    });
    await exited;
    // A line is an acknowledgement only if it was printed whole.
    const acked = out
      .split('\n')
      .slice(0, -1)
      .map((l) => JSON.parse(l) as { txId: string; at: number; keep: boolean });
    expect(acked.length).toBeGreaterThanOrEqual(target);

    const log = new FileDecisionLog({ dir, segmentBytes: 8192, completedRetentionMs: 0 });
    await log.open();
    try {
      let kept = 0;
      for (const a of acked) {
        const snap = await log.get(a.txId);
        if (a.keep) {
          kept++;
          expect(snap?.decision).toMatchObject({ outcome: 'commit', at: a.at });
          expect(snap?.completed).toBe(false);
        } else if (snap) {
          // Completed ones may already be forgotten; if not, they still say commit.
          expect(snap.decision).toMatchObject({ outcome: 'commit', at: a.at });
        }
      }
      expect(kept).toBeGreaterThan(0);
    } finally {
      await log.close();
    }
  });
});
