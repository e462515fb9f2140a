import type { LogRecord, TxSnapshot } from '../engine/ports/decision-log';
import { OutcomeTable, unpackOutcome } from './outcome-table';
import { normalizeRecord } from './record-shape';
import { TxEntry, type StoredRecord } from './tx-entry';

export { PENDING_SEQ, TxEntry, type StoredRecord } from './tx-entry';

/** What a compaction writes and forgets, taken in one synchronous pass so it is a consistent cut. */
export interface CompactionCut {
  /** Records of transactions kept in full that lie in segments <= the cut, transaction by transaction, each in append order. */
  records: StoredRecord[];
  /** Completed transactions past retention: forgotten. */
  forget: string[];
  /**
   * Completed transactions within retention beyond the count kept in full:
   * from now on only their outcome record is written and held. Each one's
   * record is also in `records` (where its transaction stands), not yet on
   * disk (`offset` -1): the snapshot encodes it.
   */
  reduce: Array<{ txId: string; stored: StoredRecord }>;
  /** Transactions already held as outcomes and kept: the snapshot encodes their outcome records from these, a chunk at a time. */
  outcomes: { ids: string[]; packed: number[] };
  kept: number;
}

/**
 * The in-memory fold of the log: every retained transaction. Those still
 * running, and the completed ones kept in full, as a TxEntry each (in the
 * order first seen); completed ones reduced to their outcome record in the
 * OutcomeTable, so memory grows with in-flight work, not with history.
 */
export class TxIndex {
  private readonly txs = new Map<string, TxEntry>();
  private readonly outcomes = new OutcomeTable();
  /** Transactions that had a hazard record (few: each waits for an operator), so counting them never walks the index. */
  private readonly hazardous = new Set<string>();

  get size(): number {
    return this.txs.size + this.outcomes.size;
  }

  /** Completed transactions held only as their outcome record. */
  get outcomeCount(): number {
    return this.outcomes.size;
  }

  /**
   * The entry of `txId`. One held only as its outcome comes back as a fresh
   * entry of that one record, to read: changing it changes nothing (entryFor
   * is the way to add to a transaction).
   */
  entry(txId: string): TxEntry | undefined {
    const entry = this.txs.get(txId);
    if (entry) return entry;
    const outcome = this.outcomes.get(txId);
    if (!outcome) return undefined;
    const read = new TxEntry(txId);
    read.append(outcome, 0);
    return read;
  }

  /** The entry of `txId`, created (empty) if there is none; one held as its outcome is brought back in full, to be added to. */
  entryFor(txId: string): TxEntry {
    let entry = this.txs.get(txId);
    if (!entry) {
      entry = new TxEntry(txId);
      const outcome = this.outcomes.get(txId);
      if (outcome) {
        this.outcomes.delete(txId);
        // Offset -1 and seq 0: lies before any cut, and the next snapshot encodes it again.
        entry.append(outcome, 0);
      }
      this.txs.set(txId, entry);
    }
    return entry;
  }

  /** Folds a record in (replay and append). */
  add(record: LogRecord, seq: number, offset = -1, inSnapshot = false): StoredRecord {
    // A snapshot's outcome record of a transaction not seen yet: held as an outcome, as when it was written.
    if (inSnapshot && record.type === 'complete' && !this.txs.has(record.txId) && !this.outcomes.has(record.txId) && this.outcomes.set(record)) {
      return { record, seq, offset, inSnapshot };
    }
    if (record.type === 'hazard') this.hazardous.add(record.txId);
    return this.entryFor(record.txId).append(record, seq, offset, inSnapshot);
  }

  /** Unfinished transactions with a hazard: O(transactions that ever had one). */
  unfinishedWithHazards(): number {
    let n = 0;
    for (const txId of this.hazardous) {
      const e = this.txs.get(txId);
      if (e && e.completedAt === undefined && e.hazards.length > 0) n++;
      else if (!e || e.completedAt !== undefined) this.hazardous.delete(txId);
    }
    return n;
  }

  /**
   * Whether some completed transaction's retention ended at or before
   * `completedAtOrBefore`: the oldest outcome (about the first one held), or
   * any completed in full. Cheap: a timer asks.
   */
  holdsExpired(completedAtOrBefore: number): boolean {
    const oldest = this.outcomes.oldestAt();
    if (oldest !== undefined && oldest <= completedAtOrBefore) return true;
    for (const e of this.txs.values()) if (e.completedAt !== undefined && e.completedAt <= completedAtOrBefore) return true;
    return false;
  }

  unfinished(): TxSnapshot[] {
    const open: TxEntry[] = [];
    for (const e of this.txs.values()) if (e.completedAt === undefined && !e.auditOnly) open.push(e);
    // Array.prototype.sort is stable: equal createdAt keep first-seen order.
    open.sort((a, b) => a.createdAt - b.createdAt);
    return open.map((e) => e.snapshot());
  }

  unfinishedCount(): number {
    let n = 0;
    for (const e of this.txs.values()) if (e.completedAt === undefined && !e.auditOnly) n++;
    return n;
  }

  /**
   * Picks what a compaction through segment `through` keeps and forgets.
   * Completed transactions completed at or before `forgetCompletedAtOrBefore`
   * (past retention) are forgotten. Beyond that, while more than
   * `maxCompleted` completed transactions would be kept in full (memory holds
   * every kept transaction, so a busy coordinator must not keep retention-many
   * minutes of full histories), the oldest are reduced to their outcome
   * record, kept until their retention ends: retention is bounded by time,
   * never by count, so an outcome a client may still ask for is still there.
   */
  cut(through: number, forgetCompletedAtOrBefore: number, maxCompleted = Infinity): CompactionCut {
    const forgetting = new Set<TxEntry>();
    const reducing = new Set<TxEntry>();
    const candidates: TxEntry[] = [];
    let completed = 0;
    for (const e of this.txs.values()) {
      // A transaction with records after the cut is kept whole, so no record of
      // it can be replayed later without the ones before it.
      const sealed = e.sealedThrough(through);
      if (e.auditOnly) {
        if (sealed) forgetting.add(e);
        continue;
      }
      if (e.completedAt === undefined) continue;
      if (sealed && e.completedAt <= forgetCompletedAtOrBefore) {
        forgetting.add(e);
        continue;
      }
      if (e.outcomeOnly) {
        // Nothing but an outcome record (say, brought back by a record since forgotten): held as one.
        if (sealed) reducing.add(e);
        continue;
      }
      completed++;
      // A hazard waits for an operator, who needs the whole story: kept in full until retention ends.
      if (sealed && e.hazards.length === 0) candidates.push(e);
    }
    if (completed > maxCompleted) {
      candidates.sort((a, b) => a.completedAt! - b.completedAt!);
      for (const e of candidates.slice(0, completed - maxCompleted)) reducing.add(e);
    }
    const records: StoredRecord[] = [];
    const forget: string[] = [];
    const reduce: CompactionCut['reduce'] = [];
    for (const e of this.txs.values()) {
      if (forgetting.has(e)) {
        forget.push(e.txId);
        continue;
      }
      if (reducing.has(e)) {
        const stored: StoredRecord = { record: normalizeRecord(e.outcomeRecord()), seq: through, offset: -1, inSnapshot: false };
        reduce.push({ txId: e.txId, stored });
        records.push(stored);
        continue;
      }
      for (const s of e.stored) if (s.seq <= through) records.push(s);
    }
    const split = this.outcomes.partition(forgetCompletedAtOrBefore);
    forget.push(...split.forget);
    return { records, forget, reduce, outcomes: { ids: split.keptIds, packed: split.keptPacked }, kept: this.size - forget.length };
  }

  /**
   * Replaces reduced transactions by their outcome record once the snapshot
   * holding it is installed. A record appended for one of them since the cut
   * lives in a later segment and is replayed after it, so memory keeps it too
   * (in full, behind the outcome record).
   */
  reduce(reduced: CompactionCut['reduce'], through: number): void {
    for (const { txId, stored } of reduced) {
      const old = this.txs.get(txId);
      const later = old ? old.stored.filter((s) => s.seq > through) : [];
      if (later.length === 0 && stored.record.type === 'complete' && this.outcomes.set(stored.record)) {
        this.txs.delete(txId);
        continue;
      }
      const e = new TxEntry(txId);
      e.apply(stored);
      for (const s of later) e.apply(s);
      this.txs.set(txId, e);
    }
  }

  /**
   * Drops forgotten transactions once their snapshot is installed. A record
   * appended for one of them since the cut lives in a later segment and will be
   * replayed on its own after a restart, so memory keeps exactly that too.
   */
  forget(txIds: string[], through: number): void {
    for (const txId of txIds) {
      if (this.outcomes.delete(txId)) continue;
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

/** The outcome record of a kept outcome entry, for the snapshot (see CompactionCut.outcomes). */
export function keptOutcomeRecord(cut: CompactionCut, i: number): LogRecord {
  return unpackOutcome(cut.outcomes.ids[i], cut.outcomes.packed[i]);
}
