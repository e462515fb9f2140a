import type { TwopcError } from '../../engine/ports/protocol';
import type {
  AppendableRecord,
  AppendOptions,
  CompactReport,
  DecisionLog,
  HeldCounts,
  DecisionRecord,
  LogRecord,
  OpenReport,
  TxSnapshot,
} from '../../engine/ports/decision-log';
import { appendTypeProblem, invalidRecord } from '../log-errors';
import { normalizeRecord, recordJson, recordProblem } from '../record-shape';
import { StoreLifecycle } from '../store-lifecycle';
import { PENDING_SEQ, TxIndex, type TxEntry } from '../tx-index';
import { FileLogCompactor } from './file-log-compactor';
import { resolveFileLogOptions, type FileDecisionLogOptions, type ResolvedFileLogOptions } from './file-log-options';
import { replayLog } from './file-log-replay';
import { acquireLock, type LockHandle } from './lock-file';
import { LogWriter } from './log-writer';
import { frameJson } from './record-codec';

export type { FileDecisionLogOptions } from './file-log-options';

const SNAPSHOTS_PER_TURN = 5_000;

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
  private readonly life: StoreLifecycle;
  private readonly index = new TxIndex();
  /** Decision writes not yet acknowledged (durable, for a commit): readers wait for them. */
  private readonly pendingDecisions = new Set<Promise<void>>();
  private writer?: LogWriter;
  private lock?: LockHandle;
  private compactor?: FileLogCompactor;

  constructor(options: FileDecisionLogOptions) {
    this.o = resolveFileLogOptions(options);
    this.life = new StoreLifecycle(this.o.dir, 'FileDecisionLog', { dir: this.o.dir });
  }

  /** How long a completed transaction's outcome is kept (`completedRetentionMs`). */
  get retentionMs(): number {
    return this.o.completedRetentionMs;
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
    return this.life.open(
      () => this.load(),
      async () => {
        await this.writer?.close().catch(() => undefined);
        await this.lock?.release().catch(() => undefined);
      },
    );
  }

  private async load(): Promise<OpenReport> {
    const { fs, dir } = this.o;
    await fs.mkdir(dir);
    this.lock = await acquireLock({ fs, dir });
    const replayed = await replayLog({ fs, dir, index: this.index });
    const writer = new LogWriter(
      { fs, dir, segmentBytes: this.o.segmentBytes, groupCommit: this.o.groupCommit, onSealed: (seq, bytes) => this.compactor!.onSealed(seq, bytes) },
      replayed.active,
    );
    this.writer = writer;
    this.compactor = new FileLogCompactor({ o: this.o, index: this.index, writer, isOpen: () => this.life.isOpen, snapshot: replayed.snapshot, sealed: replayed.sealed });
    this.compactor.startTimer();
    return replayed.report;
  }

  append(record: AppendableRecord, options?: AppendOptions): Promise<void> {
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
    // A `complete` after a decision record is waited for by no caller on a transaction's path: it
    // rides with the next write. Without one (read-only, branchless, one-phase) it is the only proof
    // of the outcome already answered, so it goes out at once like any other record. An unhurried
    // record (an in-process registration, which only the transaction's later PREPARE waits for)
    // rides too: at the latest at the end of this turn, after the branches' BEGINs went out.
    const rides = options?.unhurried === true || (record.type === 'complete' && this.index.entry(record.txId)?.decision !== undefined);
    return this.writer!.enqueue(encoded.frame, this.index.add(encoded.record, PENDING_SEQ), false, rides);
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
    // Completed and held as its outcome record (its decision record reduced
    // away): the register still has that winner. Answered, never replaced.
    const ended = existing?.completedAt !== undefined ? existing.outcome : undefined;
    if (ended) return Promise.resolve(Object.freeze({ type: 'decision', txId: decision.txId, at: existing!.completedAt!, outcome: ended, source: 'engine', branches: [] }));
    let encoded: { frame: Buffer; record: DecisionRecord };
    try {
      encoded = encode(decision as DecisionRecord, 'decision');
    } catch (e) {
      return Promise.reject(e);
    }
    // Taken in memory before anything is awaited: a racing decide() in this
    // same turn finds it and gets this record back, whatever it proposed.
    // entryFor, not `existing`: a transaction held as its outcome comes back in full to take the record.
    const entry = this.index.entryFor(decision.txId);
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
    const entry = this.index.entry(txId);
    return entry && !entry.auditOnly ? entry.snapshot() : undefined;
  }

  async unfinished(): Promise<TxSnapshot[]> {
    this.assertReadable();
    if (this.pendingDecisions.size > 0) await Promise.all(this.pendingDecisions);
    this.assertReadable();
    // Snapshots made SNAPSHOTS_PER_TURN at a time: a sweep's listing of tens of thousands of running
    // transactions must not hold requests up. Each snapshot is whole; a listing is stale by the time
    // it is used anyway, so the few milliseconds between the turns change nothing for its readers.
    const open = this.index.unfinishedEntries();
    const out = new Array<TxSnapshot>(open.length);
    for (let i = 0; i < open.length; i++) {
      if (i % SNAPSHOTS_PER_TURN === SNAPSHOTS_PER_TURN - 1) await new Promise<void>((r) => setImmediate(r));
      out[i] = open[i].snapshot();
    }
    return out;
  }

  async history(txId: string): Promise<LogRecord[]> {
    this.assertReadable();
    return this.index.entry(txId)?.stored.map((s) => s.record) ?? [];
  }

  async unfinishedWithHazards(): Promise<number> {
    this.assertReadable();
    return this.index.unfinishedWithHazards();
  }

  /** Transactions held in memory: in full, and as outcome records only (about 35 bytes each). */
  held(): HeldCounts {
    return { inFull: this.index.size - this.index.outcomeCount, outcomes: this.index.outcomeCount };
  }

  /**
   * Seals the active segment, then forgets completed transactions past the
   * retention period and replaces every sealed segment by one snapshot.
   */
  compact(): Promise<CompactReport> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    return this.compactor!.compact();
  }

  /** See DecisionLog.compactIfDue: what the 30-s timer would do, now (`makeRoom`: to forget expired outcomes at the cap). */
  async compactIfDue(options: { makeRoom?: boolean } = {}): Promise<void> {
    if (this.unusable()) return;
    await this.compactor!.compactIfDue(options);
  }

  close(): Promise<void> {
    return this.life.close(() => this.shutDown());
  }

  private async shutDown(): Promise<void> {
    // A compaction in flight finishes first: it may be between installing its
    // snapshot and deleting what it covers, and the writer must outlive it.
    this.compactor?.stopTimer();
    await this.compactor?.idle();
    try {
      await this.writer?.close();
    } finally {
      // Released even when the writer's close failed (its error is rethrown).
      await this.lock?.release();
    }
  }

  private unusable(): TwopcError | undefined {
    const refusal = this.life.refusal();
    if (refusal) return refusal;
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
}
