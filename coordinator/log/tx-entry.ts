import type { BranchInfo, Outcome } from '../engine/ports/types';
import type { BeginRecord, CompleteRecord, DecisionRecord, HazardRecord, LogRecord, TxSnapshot } from '../engine/ports/decision-log';

/**
 * Sequence number of a record that is queued but not yet written to a
 * segment: past any segment's number, and a small integer (2^30 - 1), which
 * V8 stores in the object itself. One boxed number per record in the field
 * (Number.MAX_SAFE_INTEGER, as before, made every `seq` a heap number of its
 * own) cost 16 bytes per record held.
 */
export const PENDING_SEQ = 0x3fff_ffff;

/**
 * A record as the index holds it, and where its frame is on disk: segment
 * `seq` at `offset`, or, when `inSnapshot`, the snapshot through `seq`.
 * Compaction copies frames from there instead of encoding records again.
 */
export interface StoredRecord {
  readonly record: LogRecord;
  seq: number;
  offset: number;
  inSnapshot: boolean;
}

// Shared, frozen placeholders until a transaction has branches or hazards: two
// arrays fewer per transaction, which the garbage collector notices at tens of
// thousands of transactions a second.
const NO_BRANCHES: readonly BranchInfo[] = Object.freeze([]);
const NO_HAZARDS: readonly HazardRecord[] = Object.freeze([]);

// Arrays of up to this many entries are replaced by a copy one longer on each
// add rather than grown in place: V8 grows an array by at least 16 slots (and a
// spread copy too), so a transaction's handful of records or branches would each
// carry ~130 unused bytes. `concat` allocates exactly the length it returns.
const EXACT_UP_TO = 16;

function added<T>(list: readonly T[], item: T): T[] {
  if (list.length >= EXACT_UP_TO) {
    (list as T[]).push(item);
    return list as T[];
  }
  return list.concat([item]);
}

/**
 * One transaction folded from its records. Mutable only through `append`.
 * Tens of thousands are held while running, so it keeps little of its own:
 * its time, expiry, metadata and owner are read from its begin record.
 */
export class TxEntry {
  private list?: StoredRecord[];
  /** The first begin record (replay keeps the first, as the register does). */
  private begin?: BeginRecord;
  branches: readonly BranchInfo[] = NO_BRANCHES;
  decision?: DecisionRecord;
  /** Settles when the winning decision is written (and synced, for a commit); unset for decisions read back from disk. */
  decisionDone?: Promise<void>;
  completedAt?: number;
  /** The outcome a `complete` record proves (see CompleteRecord). */
  completedOutcome?: Outcome;
  /** A `complete` without `outcome` was seen (an older version's, or one written after the transaction was forgotten). */
  private unprovenComplete = false;
  hazards: readonly HazardRecord[] = NO_HAZARDS;

  constructor(readonly txId: string) {}

  /** When it began; one first seen through another record (a sweep found a prepared branch nobody registered) is dated by its first record. */
  get createdAt(): number {
    return this.begin?.at ?? this.list?.[0].record.at ?? 0;
  }

  get expiresAt(): number {
    return this.begin?.expiresAt ?? this.list?.[0].record.at ?? 0;
  }

  get metadata(): Record<string, unknown> | undefined {
    return this.begin?.metadata;
  }

  get owner(): number | undefined {
    return this.begin?.owner;
  }

  /** Every record of the transaction, in append order. */
  get stored(): readonly StoredRecord[] {
    return this.list ?? [];
  }

  /** Adds a record (`seq` PENDING_SEQ until the writer writes it) and folds it in. */
  append(record: LogRecord, seq: number, offset = -1, inSnapshot = false): StoredRecord {
    const stored: StoredRecord = { record, seq, offset, inSnapshot };
    this.apply(stored);
    return stored;
  }

  apply(stored: StoredRecord): void {
    const r = stored.record;
    this.list = this.list ? added(this.list, stored) : [stored];
    switch (r.type) {
      case 'begin':
        this.begin ??= r;
        return;
      case 'enlist': {
        const at = this.branches.findIndex((b) => b.branchId >= r.branch.branchId);
        if (at === -1) this.branches = added(this.branches, r.branch);
        else if (this.branches[at].branchId !== r.branch.branchId) this.branches = this.branches.slice(0, at).concat([r.branch], this.branches.slice(at));
        return;
      }
      case 'decision':
        // First decision wins, on disk as in memory: replay keeps the register's answer.
        if (!this.decision) this.decision = r;
        return;
      case 'complete':
        if (this.completedAt === undefined) this.completedAt = r.at;
        if (r.outcome === undefined) this.unprovenComplete = true;
        else this.completedOutcome ??= r.outcome;
        return;
      case 'hazard':
        this.hazards = [...this.hazards, r];
        return;
      case 'action':
        // The audit trail only: it changes nothing of the transaction's state.
        return;
    }
  }

  /**
   * How the transaction ended or will end, as far as its records prove it:
   * the decision; else what a `complete` says; else (a log of an older
   * version, whose one-phase commits and read-only finishes wrote a bare
   * `complete`) a bare `complete` in a transaction whose begin is logged and
   * that has no decision: compaction forgets a transaction's records all
   * together, so such a history is whole, and nothing else wrote that. A
   * bare `complete` alone (written after its transaction was forgotten)
   * proves nothing.
   */
  get outcome(): Outcome | undefined {
    if (this.decision) return this.decision.outcome;
    if (this.completedOutcome) return this.completedOutcome;
    return this.unprovenComplete && this.begin !== undefined ? 'commit' : undefined;
  }

  /** The record compaction keeps of a completed transaction once its full records go: its outcome record. */
  outcomeRecord(): CompleteRecord {
    const outcome = this.outcome;
    return { type: 'complete', txId: this.txId, at: this.completedAt!, ...(outcome ? { outcome } : {}) };
  }

  /**
   * Only operator action records (the audit trail), no state: they are appended
   * to unfinished transactions only, so this is one forgotten by compaction
   * between an operator's read and the action's record. It does not exist.
   */
  get auditOnly(): boolean {
    return this.stored.every((s) => s.record.type === 'action');
  }

  /** Nothing is held of the transaction but its outcome record. */
  get outcomeOnly(): boolean {
    return this.stored.length === 1 && this.stored[0].record.type === 'complete';
  }

  snapshot(): TxSnapshot {
    const s: TxSnapshot = {
      txId: this.txId,
      createdAt: this.createdAt,
      expiresAt: this.expiresAt,
      branches: this.branches.slice(),
      completed: this.completedAt !== undefined,
      hazards: this.hazards.slice(),
    };
    if (this.metadata !== undefined) s.metadata = this.metadata;
    if (this.owner !== undefined) s.owner = this.owner;
    if (this.decision) s.decision = this.decision;
    const outcome = this.outcome;
    if (outcome) s.outcome = outcome;
    if (this.completedAt !== undefined) s.completedAt = this.completedAt;
    return s;
  }

  /** True when every record of the transaction is in segments <= `through` (or an older snapshot). */
  sealedThrough(through: number): boolean {
    return this.stored.every((s) => s.seq <= through);
  }
}
