import { TwopcError, errorMessage } from '../../engine/ports/protocol';
import type { CompactReport } from '../../engine/ports/decision-log';
import { recordJson } from '../record-shape';
import { keptOutcomeRecord, type StoredRecord, type TxIndex } from '../tx-index';
import type { ResolvedFileLogOptions } from './file-log-options';
import { logCorrupt, type ReplayedLog } from './file-log-replay';
import { errnoCode } from './log-fs';
import { inDir, segmentName, snapshotName } from './log-layout';
import type { LogWriter } from './log-writer';
import { frameAt, frameJson } from './record-codec';
import { writeSnapshot } from './snapshot';

// Background compaction starts once this many segments are sealed (and they
// outweigh the last snapshot, so rewriting the kept records stays amortized).
const AUTO_COMPACT_SEGMENTS = 2;
const FRAMES_PER_TURN = 4096;

/** What a compactor works on: the open log's options, index and writer, and the files open() read back. */
export interface CompactorDeps {
  o: ResolvedFileLogOptions;
  index: TxIndex;
  writer: LogWriter;
  /** False once the log is closing: no new background compaction starts then. */
  isOpen: () => boolean;
  snapshot: ReplayedLog['snapshot'];
  sealed: ReplayedLog['sealed'];
}

/**
 * Compaction of the file log: forgets completed transactions past the
 * retention period and replaces every sealed segment by one snapshot, one
 * compaction at a time, on demand or in the background as segments seal.
 */
export class FileLogCompactor {
  private readonly o: ResolvedFileLogOptions;
  private readonly index: TxIndex;
  private readonly writer: LogWriter;
  private readonly isOpen: () => boolean;
  private snapshotSeq: number;
  private snapshotBytes: number;
  /** Sealed segments after the snapshot: seq -> bytes. */
  private readonly sealed: Map<number, number>;
  private tail: Promise<unknown> = Promise.resolve();
  private autoCompacting = false;
  /**
   * When outcomes past their retention were last looked for (log clock;
   * -Infinity: never): a compaction of any kind started (each forgets them
   * all), or a `makeRoom` check ran.
   */
  private lastForgotten = -Infinity;
  private timer?: NodeJS.Timeout;

  constructor(deps: CompactorDeps) {
    this.o = deps.o;
    this.index = deps.index;
    this.writer = deps.writer;
    this.isOpen = deps.isOpen;
    this.snapshotSeq = deps.snapshot.seq;
    this.snapshotBytes = deps.snapshot.bytes;
    this.sealed = deps.sealed;
  }

  /** Seals the active segment, then compacts through it. */
  compact(): Promise<CompactReport> {
    return this.exclusive(async () => this.compactThrough(await this.writer.rotate()));
  }

  /** Settles once the compactions started so far have finished. */
  idle(): Promise<unknown> {
    return this.tail;
  }

  /**
   * Compacts every `compactIntervalMs` as well (with autoCompact), when
   * anything was written since the last compaction, or when forgetting what
   * retention let go is worth a new snapshot (TxIndex.worthForgetting): so an
   * idle coordinator, whose segments no longer seal, still reduces the
   * completed transactions of its last burst to outcomes and forgets them as
   * their retention ends, giving the memory and the disk back, without
   * rewriting every kept outcome each time a few expire. Holding an outcome
   * past its retention is safe (retention is a minimum): it is forgotten at
   * the next compaction.
   */
  startTimer(): void {
    if (!this.o.autoCompact || this.o.compactIntervalMs === 0 || this.timer) return;
    this.timer = setInterval(() => this.onTimer(), this.o.compactIntervalMs);
    this.timer.unref();
  }

  stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private onTimer(): void {
    void this.compactIfDue();
  }

  /**
   * The timer's compaction, now: settles once it is done (or at once when
   * there is nothing to do, or one is under way). `makeRoom` (the engine is at
   * its outcome cap): only to forget outcomes past their retention, any of
   * them, at most once per compaction interval, counting every compaction
   * (DecisionLog.compactIfDue).
   */
  compactIfDue(options: { makeRoom?: boolean } = {}): Promise<void> {
    // A log whose owner turned its own compactions off is not compacted behind its back either.
    if (!this.o.autoCompact || this.o.compactIntervalMs === 0) return Promise.resolve();
    if (this.autoCompacting || !this.isOpen() || this.writer.failed) return this.tail.then(() => undefined);
    const now = this.o.now();
    const cutoff = now - this.o.completedRetentionMs;
    if (options.makeRoom) {
      // At most once per interval, counting the other compactions (under steady load at the cap the
      // timer compacts every interval anyway) and the checks (finding none expired walks every
      // outcome held). A clock stepped back counts as due rather than as waiting that much longer.
      if (now >= this.lastForgotten && now - this.lastForgotten < this.o.compactIntervalMs) return Promise.resolve();
      this.lastForgotten = now;
      if (!this.index.anyExpired(cutoff)) return Promise.resolve();
    } else {
      const written = this.writer.activeSize > 0 || this.sealed.size > 0;
      if (!written && !this.index.worthForgetting(cutoff)) return Promise.resolve();
    }
    this.autoCompacting = true;
    return this.compact()
      .then(() => undefined)
      .catch((e) => this.o.onBackgroundError(e))
      .finally(() => {
        this.autoCompacting = false;
      });
  }

  /** The writer's `onSealed`: counts the segment, and starts a background compaction when enough are sealed. */
  onSealed(seq: number, bytes: number): void {
    this.sealed.set(seq, bytes);
    if (!this.o.autoCompact || this.autoCompacting || !this.isOpen()) return;
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
    const run = this.tail.then(() => {
      this.lastForgotten = this.o.now();
      return fn();
    });
    this.tail = run.catch(() => undefined);
    return run;
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

  private diskBytes(): number {
    let n = this.snapshotBytes + this.writer.activeSize;
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
    if (this.writer.failed) throw this.writer.unavailable();
    const unchanged = { forgotten: 0, kept: this.index.size, bytesBefore, bytesAfter: bytesBefore };
    if (through < this.snapshotSeq) return unchanged;
    const cut = await this.index.cut(through, this.o.now() - this.o.completedRetentionMs, this.o.maxRetainedCompleted);
    // Nothing sealed since the snapshot: it is rewritten (under the same name) only when it would shrink.
    if (through === this.snapshotSeq && cut.forget.length === 0 && cut.reduce.length === 0) return unchanged;
    const frames = await this.framesOf(cut.records);
    const outcomes = { count: cut.outcomes.ids.length, json: (i: number) => recordJson(keptOutcomeRecord(cut, i)) };
    const written = await writeSnapshot(fs, dir, through, frames, outcomes);
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
    await this.index.forget(cut.forget, through);
    await this.index.reduce(cut.reduce, through);
    const covered = [...this.sealed.keys()].filter((seq) => seq <= through);
    for (const seq of covered) this.sealed.delete(seq);
    const obsolete = covered.map(segmentName);
    if (previous > 0 && previous !== through) obsolete.push(snapshotName(previous));
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
      // Every CRC is checked here: a turn now and then keeps requests going through a large copy.
      if (i % FRAMES_PER_TURN === FRAMES_PER_TURN - 1) await new Promise<void>((r) => setImmediate(r));
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
        throw logCorrupt(file, s.offset, frame, 'found while compacting; compaction stopped and the next open will refuse to start until it is repaired');
      }
      frames[i] = frame;
    }
    return frames;
  }
}
