import { TwopcError, errorMessage } from '../../engine/ports/protocol';
import type {
  AppendableRecord,
  CompactReport,
  DecisionLog,
  DecisionRecord,
  LogRecord,
  OpenReport,
  TxSnapshot,
} from '../../engine/ports/decision-log';
import { appendTypeProblem, invalidRecord, logNotOpen, logOpenedTwice } from '../log-errors';
import { resolveFileLogOptions, type FileDecisionLogOptions, type ResolvedFileLogOptions } from './file-log-options';
import { acquireLock, type LockHandle } from './lock-file';
import { errnoCode, fsyncDir } from './log-fs';
import { inDir, readLayout, segmentName, snapshotName } from './log-layout';
import { LogWriter } from './log-writer';
import { frameAt, frameJson } from './record-codec';
import { normalizeRecord, recordJson, recordProblem } from '../record-shape';
import { decodeSegment } from './segment-reader';
import { readSnapshot, writeSnapshot } from './snapshot';
import { PENDING_SEQ, TxIndex, type StoredRecord, type TxEntry } from '../tx-index';

export type { FileDecisionLogOptions } from './file-log-options';

type State = 'new' | 'opening' | 'open' | 'closing' | 'closed';

// Background compaction starts once this many segments are sealed (and they
// outweigh the last snapshot, so rewriting the kept records stays amortized).
const AUTO_COMPACT_SEGMENTS = 2;

/**
 * The record as the log keeps it (a frozen, normalized copy: see
 * normalizeRecord) and its frame. Memory then holds exactly what a reopen
 * reads back, and the same objects can be handed to every reader.
 */
function encode<T extends LogRecord>(record: T, type: T['type'] = record.type): { frame: Buffer; record: T } {
  const copy = normalizeRecord(record, type) as T;
  return { frame: frameJson(recordJson(copy)), record: copy };
}

/**
 * The default decision log: append-only segments of CRC-checked records in one
 * directory, an exclusive lock file, group commit, and compaction of completed
 * transactions.
 *
 * @example
 * const log = new FileDecisionLog({ dir: './data' });
 * const report = await log.open(); // throws log-locked, log-corrupt
 * if (report.tornTail) logger.warn(report.tornTail, 'cut a torn final record');
 * const winner = await log.decide({ txId, at: Date.now(), outcome: 'commit', source: 'engine', branches });
 */
export class FileDecisionLog implements DecisionLog {
  readonly kind = 'file';
  private readonly o: ResolvedFileLogOptions;
  private state: State = 'new';
  private readonly index = new TxIndex();
  /** Decision writes not yet acknowledged (durable, for a commit): readers wait for them. */
  private readonly pendingDecisions = new Set<Promise<void>>();
  private writer?: LogWriter;
  private lock?: LockHandle;
  private snapshotSeq = 0;
  private snapshotBytes = 0;
  /** Sealed segments after the snapshot: seq -> bytes. */
  private readonly sealed = new Map<number, number>();
  private compactTail: Promise<unknown> = Promise.resolve();
  private autoCompacting = false;
  private opening?: Promise<OpenReport>;
  private closing?: Promise<void>;

  constructor(options: FileDecisionLogOptions) {
    this.o = resolveFileLogOptions(options);
  }

  /** The absolute path of the log directory. */
  get dir(): string {
    return this.o.dir;
  }

  /** The `log-unavailable` error that failed the writer (a write, sync or rotation failed); undefined while healthy. */
  get failure(): TwopcError | undefined {
    return this.writer?.failed;
  }

  open(): Promise<OpenReport> {
    if (this.state !== 'new') {
      return Promise.reject(logOpenedTwice(this.o.dir, 'FileDecisionLog', { dir: this.o.dir }));
    }
    this.state = 'opening';
    this.opening = this.load();
    return this.opening;
  }

  private async load(): Promise<OpenReport> {
    const fs = this.o.fs;
    try {
      await fs.mkdir(this.o.dir);
      this.lock = await acquireLock({ fs, dir: this.o.dir });
      const report = await this.readBack();
      this.state = 'open';
      return report;
    } catch (e) {
      await this.writer?.close().catch(() => undefined);
      await this.lock?.release().catch(() => undefined);
      this.state = 'closed';
      throw e;
    }
  }

  append(record: AppendableRecord): Promise<void> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    const problem = appendTypeProblem(record) ?? recordProblem(record);
    if (problem) return Promise.reject(invalidRecord('append', problem));
    let encoded: { frame: Buffer; record: AppendableRecord };
    try {
      encoded = encode(record);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.writer!.enqueue(encoded.frame, this.index.add(encoded.record, PENDING_SEQ), false);
  }

  makeDurable(): Promise<void> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    // Shares the next group fdatasync with the decisions being forced.
    return this.writer!.sync();
  }

  decide(decision: Omit<DecisionRecord, 'type'>): Promise<DecisionRecord> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    const problem = recordProblem(decision, 'decision');
    if (problem) return Promise.reject(invalidRecord('decide', problem));
    const existing = this.index.entry(decision.txId);
    if (existing?.decision) return this.winner(existing);
    let encoded: { frame: Buffer; record: DecisionRecord };
    try {
      encoded = encode(decision as DecisionRecord, 'decision');
    } catch (e) {
      return Promise.reject(e);
    }
    // Taken in memory before anything is awaited: a racing decide() in this
    // same turn finds it and gets this record back, whatever it proposed.
    const entry = existing ?? this.index.entryFor(decision.txId);
    const stored = entry.append(encoded.record, PENDING_SEQ);
    const done = this.writer!.enqueue(encoded.frame, stored, encoded.record.outcome === 'commit');
    // Kept (settled or not): the batch promise is shared, so this costs nothing per transaction.
    entry.decisionDone = done;
    this.pendingDecisions.add(done);
    const settled = () => this.pendingDecisions.delete(done);
    done.then(settled, settled);
    return done.then(() => encoded.record);
  }

  /**
   * A decision is visible to readers only once it is durable: a reader that
   * acted on a commit still being synced (a retry, a sweep) could send COMMIT
   * PREPARED for a decision a power loss then erases. So reads wait for it.
   */
  async get(txId: string): Promise<TxSnapshot | undefined> {
    this.assertReadable();
    const pending = this.index.entry(txId)?.decisionDone;
    if (pending) await pending;
    this.assertReadable();
    return this.index.entry(txId)?.snapshot();
  }

  async unfinished(): Promise<TxSnapshot[]> {
    this.assertReadable();
    if (this.pendingDecisions.size > 0) await Promise.all(this.pendingDecisions);
    this.assertReadable();
    return this.index.unfinished();
  }

  async history(txId: string): Promise<LogRecord[]> {
    this.assertReadable();
    return this.index.entry(txId)?.stored.map((s) => s.record) ?? [];
  }

  /**
   * Seals the active segment, then forgets completed transactions past the
   * retention period and replaces every sealed segment by one snapshot.
   */
  compact(): Promise<CompactReport> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    return this.exclusive(async () => this.compactThrough(await this.writer!.rotate()));
  }

  private compactionFailed(e: unknown): TwopcError {
    if (e instanceof TwopcError) return e;
    return new TwopcError(
      'log-unavailable',
      `decision log ${this.o.dir}: compaction failed (${errorMessage(e)}); the log is intact and still takes writes, and the next open finishes or discards the compaction`,
      { dir: this.o.dir, operation: 'compact' },
      { cause: e },
    );
  }

  close(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    if (this.state === 'new') {
      this.state = 'closed';
      return Promise.resolve();
    }
    // A close() racing open() waits for it, then undoes it.
    this.closing ??= (this.opening ?? Promise.resolve()).then(
      () => this.shutDown(),
      () => undefined,
    );
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.state = 'closing';
    // A compaction in flight finishes first: it may be between installing its
    // snapshot and deleting what it covers, and the writer must outlive it.
    await this.compactTail;
    let error: unknown;
    try {
      await this.writer?.close();
    } catch (e) {
      error = e;
    }
    await this.lock?.release();
    this.state = 'closed';
    if (error) throw error;
  }

  private unusable(): TwopcError | undefined {
    if (this.state !== 'open') {
      const what = this.state === 'new' || this.state === 'opening' ? 'not open' : 'closed';
      return logNotOpen(this.o.dir, what, { dir: this.o.dir });
    }
    return this.writer!.failed ? this.writer!.unavailable() : undefined;
  }

  // Reads refuse too once the writer failed: memory may hold a decision that
  // never reached the disk, and acting on it (say, a commit) would be a guess.
  private assertReadable(): void {
    const unusable = this.unusable();
    if (unusable) throw unusable;
  }

  private winner(entry: TxEntry): Promise<DecisionRecord> {
    const decision = entry.decision!;
    const done = entry.decisionDone;
    return done ? done.then(() => decision) : Promise.resolve(decision);
  }

  private corrupt(file: string, offset: number, reason: string, consequence = 'refusing to start (damage is never skipped)'): TwopcError {
    return new TwopcError('log-corrupt', `decision log ${file} is damaged at byte offset ${offset}: ${reason}; ${consequence}`, { file, offset, reason });
  }

  private async readBack(): Promise<OpenReport> {
    const { fs, dir } = this.o;
    const layout = await readLayout(fs, dir);
    // Never installed, so never relied on: the segments they would have replaced are all still here.
    for (const t of layout.temps) await fs.unlink(inDir(dir, t));
    if (layout.missingSegment !== undefined) {
      const file = inDir(dir, segmentName(layout.missingSegment));
      throw new TwopcError('log-corrupt', `decision log ${dir}: segment ${file} is missing (the segment sequence has a hole); refusing to start`, {
        file,
        offset: 0,
        reason: 'missing segment',
      });
    }
    let records = 0;
    if (layout.snapshot) {
      const snap = await readSnapshot(fs, dir, layout.snapshot.file, layout.snapshot.seq);
      for (const r of snap.records) this.index.add(normalizeRecord(r.record), snap.through, r.offset, true);
      records += snap.records.length;
      this.snapshotSeq = snap.through;
      this.snapshotBytes = snap.bytes;
    }
    // Deleted only now that the newest snapshot has read back whole: this
    // finishes a compaction that crashed after installing its snapshot.
    if (layout.superseded.length > 0) {
      for (const f of layout.superseded) await fs.unlink(inDir(dir, f));
      await fsyncDir(fs, dir);
    }

    let tornTail: OpenReport['tornTail'];
    let activeSize = 0;
    for (let i = 0; i < layout.segments.length; i++) {
      const seg = layout.segments[i];
      const file = inDir(dir, seg.file);
      const last = i === layout.segments.length - 1;
      const buf = await fs.readFile(file);
      const decoded = decodeSegment(buf);
      const damage = decoded.damages[0];
      if (damage) {
        if (!last || !damage.toEnd) {
          const where = !last ? 'in a sealed segment' : 'with valid records after it';
          throw this.corrupt(file, damage.offset, `${damage.reason} (${where})`);
        }
        // Only the last write can be torn, and only at the end of the last segment: cut it.
        tornTail = { file, offset: damage.offset, bytes: damage.bytes };
      }
      for (const r of decoded.records) this.index.add(normalizeRecord(r.record), seg.seq, r.offset);
      records += decoded.records.length;
      if (last) activeSize = tornTail ? tornTail.offset : buf.length;
      else this.sealed.set(seg.seq, buf.length);
    }

    let activeSeq: number;
    let fd: number;
    if (layout.segments.length > 0) {
      activeSeq = layout.segments[layout.segments.length - 1].seq;
      fd = await fs.open(inDir(dir, segmentName(activeSeq)), 'r+');
      try {
        if (tornTail) await fs.ftruncate(fd, tornTail.offset);
        // What was read back may never have been synced (the last process died
        // between write and fdatasync). Sync it before anyone acts on it: a
        // commit decision resumed by recovery must not vanish in a power loss.
        await fs.fsync(fd);
      } catch (e) {
        await fs.close(fd).catch(() => undefined);
        throw e;
      }
    } else {
      activeSeq = this.snapshotSeq + 1;
      fd = await fs.open(inDir(dir, segmentName(activeSeq)), 'wx');
      await fsyncDir(fs, dir);
    }
    this.writer = new LogWriter(
      { fs, dir, segmentBytes: this.o.segmentBytes, groupCommit: this.o.groupCommit, onSealed: (seq, bytes) => this.onSealed(seq, bytes) },
      { seq: activeSeq, fd, size: activeSize },
    );
    return { records, tornTail, unfinished: this.index.unfinishedCount() };
  }

  private onSealed(seq: number, bytes: number): void {
    this.sealed.set(seq, bytes);
    if (!this.o.autoCompact || this.autoCompacting || this.state !== 'open') return;
    let sealedBytes = 0;
    for (const b of this.sealed.values()) sealedBytes += b;
    if (this.sealed.size < AUTO_COMPACT_SEGMENTS || sealedBytes < this.snapshotBytes) return;
    this.autoCompacting = true;
    this.exclusive(() => this.compactThrough(seq))
      .catch((e) => this.o.onBackgroundError(e))
      .finally(() => {
        this.autoCompacting = false;
      });
  }

  /** Runs compactions one at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.compactTail.then(fn);
    this.compactTail = run.catch(() => undefined);
    return run;
  }

  private diskBytes(): number {
    let n = this.snapshotBytes + (this.writer?.activeSize ?? 0);
    for (const b of this.sealed.values()) n += b;
    return n;
  }

  private async compactThrough(through: number): Promise<CompactReport> {
    try {
      return await this.compactSealed(through);
    } catch (e) {
      throw this.compactionFailed(e);
    }
  }

  private async compactSealed(through: number): Promise<CompactReport> {
    const { fs, dir } = this.o;
    const bytesBefore = this.diskBytes();
    if (this.writer!.failed) throw this.writer!.unavailable();
    if (through <= this.snapshotSeq) return { forgotten: 0, kept: this.index.size, bytesBefore, bytesAfter: bytesBefore };
    const cut = this.index.cut(through, this.o.now() - this.o.completedRetentionMs, this.o.maxRetainedCompleted);
    const frames = await this.framesOf(cut.records);
    const written = await writeSnapshot(fs, dir, through, frames);
    // Installed: from here a restart reads this snapshot, and the older one
    // and segments <= through are superseded (a restart deletes any we miss).
    const previous = this.snapshotSeq;
    this.snapshotSeq = through;
    this.snapshotBytes = written.bytes;
    cut.records.forEach((s, i) => {
      s.seq = through;
      s.offset = written.offsets[i];
      s.inSnapshot = true;
    });
    this.index.forget(cut.forget, through);
    this.index.reduce(cut.reduce, through);
    const covered = [...this.sealed.keys()].filter((seq) => seq <= through);
    for (const seq of covered) this.sealed.delete(seq);
    const obsolete = covered.map(segmentName);
    if (previous > 0) obsolete.push(snapshotName(previous));
    for (const f of obsolete) {
      await fs.unlink(inDir(dir, f)).catch((e) => {
        if (errnoCode(e) !== 'ENOENT') throw e;
      });
    }
    return { forgotten: cut.forget.length, kept: this.index.size, bytesBefore, bytesAfter: this.diskBytes() };
  }

  /**
   * The frames of `records`, copied from the sealed files that hold them
   * rather than encoded again, each checked against its CRC on the way: a
   * frame damaged since it was written stops the compaction with
   * `log-corrupt` instead of being carried into the snapshot.
   */
  private async framesOf(records: StoredRecord[]): Promise<Buffer[]> {
    // Keyed by seq, negated for the snapshot: a snapshot through N and segment N never coexist in memory's view.
    const files = new Map<number, Buffer>();
    const frames: Buffer[] = new Array<Buffer>(records.length);
    for (let i = 0; i < records.length; i++) {
      const s = records[i];
      if (s.offset < 0) {
        // An outcome record made by this compaction (see TxIndex.cut): nothing on disk to copy yet.
        frames[i] = frameJson(recordJson(s.record));
        continue;
      }
      const key = s.inSnapshot ? -s.seq : s.seq;
      let buf = files.get(key);
      if (!buf) {
        buf = await this.o.fs.readFile(inDir(this.o.dir, s.inSnapshot ? snapshotName(s.seq) : segmentName(s.seq)));
        files.set(key, buf);
      }
      const frame = frameAt(buf, s.offset);
      if (typeof frame === 'string') {
        const file = inDir(this.o.dir, s.inSnapshot ? snapshotName(s.seq) : segmentName(s.seq));
        throw this.corrupt(file, s.offset, frame, 'found while compacting; compaction stopped and the next open will refuse to start until it is repaired');
      }
      frames[i] = frame;
    }
    return frames;
  }
}
