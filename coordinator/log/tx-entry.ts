import type { BranchInfo, Outcome } from '../engine/ports/types';
import type { CompleteRecord, DecisionRecord, HazardRecord, LogRecord, TxSnapshot } from '../engine/ports/decision-log';

/** Sequence number of a record that is queued but not yet written to a segment. */
export const PENDING_SEQ = Number.MAX_SAFE_INTEGER;

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

/** One transaction folded from its records. Mutable only through `append`. */
export class TxEntry {
  private list?: StoredRecord[];
  createdAt = 0;
  expiresAt = 0;
  metadata?: Record<string, unknown>;
  owner?: number;
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
  private begun = false;

  constructor(readonly txId: string) {}

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
    if (!this.list) {
      // Exactly one slot: most transactions hold a handful of records.
      this.list = [stored];
      // A transaction first seen through a decision (a sweep found a prepared
      // branch nobody registered) has no begin: date it by its first record.
      this.createdAt = r.at;
      this.expiresAt = r.at;
    } else {
      this.list.push(stored);
    }
    switch (r.type) {
      case 'begin':
        if (this.begun) return;
        this.begun = true;
        this.createdAt = r.at;
        this.expiresAt = r.expiresAt;
        this.metadata = r.metadata;
        this.owner = r.owner;
        return;
      case 'enlist': {
        if (this.branches === NO_BRANCHES) {
          this.branches = [r.branch];
          return;
        }
        const branches = this.branches as BranchInfo[];
        const at = branches.findIndex((b) => b.branchId >= r.branch.branchId);
        if (at === -1) branches.push(r.branch);
        else if (branches[at].branchId !== r.branch.branchId) branches.splice(at, 0, r.branch);
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
    return this.unprovenComplete && this.begun ? 'commit' : undefined;
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
