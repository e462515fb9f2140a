import type { BranchInfo } from '../engine/types';
import type { DecisionRecord, HazardRecord, LogRecord, TxSnapshot } from './decision-log';

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
        return;
      case 'hazard':
        this.hazards = [...this.hazards, r];
        return;
    }
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
    if (this.completedAt !== undefined) s.completedAt = this.completedAt;
    return s;
  }

  /** True when every record of the transaction is in segments <= `through` (or an older snapshot). */
  sealedThrough(through: number): boolean {
    return this.stored.every((s) => s.seq <= through);
  }
}

/** What a compaction writes and forgets, taken in one synchronous pass so it is a consistent cut. */
export interface CompactionCut {
  /** Records of kept transactions that lie in segments <= the cut, transaction by transaction, each in append order. */
  records: StoredRecord[];
  forget: string[];
  kept: number;
}

/** The in-memory fold of the log: every retained transaction, in the order first seen. */
export class TxIndex {
  private readonly txs = new Map<string, TxEntry>();

  get size(): number {
    return this.txs.size;
  }

  entry(txId: string): TxEntry | undefined {
    return this.txs.get(txId);
  }

  /** The entry of `txId`, created (empty) if there is none. */
  entryFor(txId: string): TxEntry {
    let entry = this.txs.get(txId);
    if (!entry) {
      entry = new TxEntry(txId);
      this.txs.set(txId, entry);
    }
    return entry;
  }

  /** Folds a record in (replay and append). */
  add(record: LogRecord, seq: number, offset = -1, inSnapshot = false): StoredRecord {
    return this.entryFor(record.txId).append(record, seq, offset, inSnapshot);
  }

  unfinished(): TxSnapshot[] {
    const open: TxEntry[] = [];
    for (const e of this.txs.values()) if (e.completedAt === undefined) open.push(e);
    // Array.prototype.sort is stable: equal createdAt keep first-seen order.
    open.sort((a, b) => a.createdAt - b.createdAt);
    return open.map((e) => e.snapshot());
  }

  unfinishedCount(): number {
    let n = 0;
    for (const e of this.txs.values()) if (e.completedAt === undefined) n++;
    return n;
  }

  /**
   * Picks what a compaction through segment `through` keeps and forgets:
   * completed transactions completed at or before `forgetCompletedAtOrBefore`,
   * and beyond that the oldest completed ones while more than `maxCompleted`
   * would stay (memory holds every kept transaction, so retention by time
   * alone would let a busy coordinator grow without bound).
   */
  cut(through: number, forgetCompletedAtOrBefore: number, maxCompleted = Infinity): CompactionCut {
    const forgetting = new Set<TxEntry>();
    const candidates: TxEntry[] = [];
    let completed = 0;
    for (const e of this.txs.values()) {
      if (e.completedAt === undefined) continue;
      // A transaction with records after the cut is kept whole, so no record of
      // it can be replayed later without the ones before it.
      const sealed = e.sealedThrough(through);
      if (sealed && e.completedAt <= forgetCompletedAtOrBefore) {
        forgetting.add(e);
        continue;
      }
      completed++;
      if (sealed) candidates.push(e);
    }
    if (completed > maxCompleted) {
      candidates.sort((a, b) => a.completedAt! - b.completedAt!);
      for (const e of candidates.slice(0, completed - maxCompleted)) forgetting.add(e);
    }
    const records: StoredRecord[] = [];
    const forget: string[] = [];
    for (const e of this.txs.values()) {
      if (forgetting.has(e)) {
        forget.push(e.txId);
        continue;
      }
      for (const s of e.stored) if (s.seq <= through) records.push(s);
    }
    return { records, forget, kept: this.txs.size - forget.length };
  }

  /**
   * Drops forgotten transactions once their snapshot is installed. A record
   * appended for one of them since the cut lives in a later segment and will be
   * replayed on its own after a restart, so memory keeps exactly that too.
   */
  forget(txIds: string[], through: number): void {
    for (const txId of txIds) {
      const e = this.txs.get(txId);
      if (!e) continue;
      this.txs.delete(txId);
      if (e.sealedThrough(through)) continue;
      // Reuse the StoredRecord objects: the writer still holds the pending ones and fills in their seq.
      const rest = new TxEntry(txId);
      for (const s of e.stored) if (s.seq > through) rest.apply(s);
      if (rest.decision === e.decision) rest.decisionDone = e.decisionDone;
      this.txs.set(txId, rest);
    }
  }
}
