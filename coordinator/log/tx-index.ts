import type { LogRecord, TxSnapshot } from '../engine/ports/decision-log';
import { OutcomeTable, packOutcome, unpackOutcome } from './outcome-table';
import { normalizeRecord } from './record-shape';
import { TxEntry, type StoredRecord } from './tx-entry';

export { PENDING_SEQ, TxEntry, type StoredRecord } from './tx-entry';

// Transactions reduced or forgotten per turn of the event loop once a snapshot is installed.
const ENTRIES_PER_TURN = 5_000;

/** What a compaction writes and forgets, taken in one synchronous pass so it is a consistent cut. */
export interface CompactionCut {
  /** Records of transactions kept in full that lie in segments <= the cut, transaction by transaction, each in append order. */
  records: StoredRecord[];
  /** Completed transactions past retention: forgotten. */
  forget: string[];
  /**
   * Completed transactions within retention beyond the count kept in full:
   * from now on only their outcome record is written and held. Each one's
   * record is also in `outcomes` as a packed number or, in the rare case its
   * time cannot be packed, in `records` as a record not yet on disk (`offset`
   * -1): the snapshot encodes it.
   */
  reduce: Array<{ txId: string; packed: number } | { txId: string; stored: StoredRecord }>;
  /**
   * Outcome records the snapshot holds (those held as outcomes and kept, and
   * the reduced ones), as ids and packed numbers: the snapshot encodes them a
   * chunk at a time, and the cut makes no object per transaction.
   */
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
  /**
   * While a compaction partitions the outcomes (over several turns): the
   * outcomes brought back in full meanwhile, which the partition may have
   * missed. The cut adds them all (an outcome record twice in a snapshot
   * reads back as the same outcome).
   */
  private promotedDuringCut?: Array<{ txId: string; packed: number }>;
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
        this.promotedDuringCut?.push({ txId, packed: packOutcome(outcome)! });
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

  /** Is any completed transaction or outcome held past the cutoff (what a compaction would forget)? */
  anyExpired(completedAtOrBefore: number): boolean {
    for (const e of this.txs.values()) if (e.completedAt !== undefined && e.completedAt <= completedAtOrBefore) return true;
    return this.outcomes.countCompletedBy(completedAtOrBefore, 1) >= 1;
  }

  /**
   * Whether forgetting what is past retention at `completedAtOrBefore` is
   * worth a snapshot by itself (nothing else written): a transaction held in
   * full has expired (kilobytes each), or the expired outcomes are at least
   * half of those held. Rewriting every kept outcome to forget a few (a
   * 12-MiB snapshot every 30 s as retention ends one by one after a load)
   * churned more memory than it gave back; waiting for half keeps the
   * rewrites' total under twice what they forget.
   */
  worthForgetting(completedAtOrBefore: number): boolean {
    for (const e of this.txs.values()) if (e.completedAt !== undefined && e.completedAt <= completedAtOrBefore) return true;
    const held = this.outcomes.size;
    if (held === 0) return false;
    const half = Math.ceil(held / 2);
    return this.outcomes.countCompletedBy(completedAtOrBefore, half) >= half;
  }

  unfinished(): TxSnapshot[] {
    return this.unfinishedEntries().map((e) => e.snapshot());
  }

  /** Every unfinished transaction's entry, oldest first (by creation; ties in first-seen order). */
  unfinishedEntries(): TxEntry[] {
    const open: TxEntry[] = [];
    for (const e of this.txs.values()) if (e.completedAt === undefined && !e.auditOnly) open.push(e);
    // Array.prototype.sort is stable: equal createdAt keep first-seen order.
    open.sort((a, b) => a.createdAt - b.createdAt);
    return open;
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
  async cut(through: number, forgetCompletedAtOrBefore: number, maxCompleted = Infinity): Promise<CompactionCut> {
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
        const record = e.outcomeRecord();
        const packed = packOutcome(record);
        if (packed !== undefined) {
          reduce.push({ txId: e.txId, packed });
          continue;
        }
        const stored: StoredRecord = { record: normalizeRecord(record), seq: through, offset: -1, inSnapshot: false };
        reduce.push({ txId: e.txId, stored });
        records.push(stored);
        continue;
      }
      for (const s of e.stored) if (s.seq <= through) records.push(s);
    }
    // Everything above ran in one turn: a consistent cut of the transactions in full. The outcomes
    // are walked over several turns; records appended meanwhile go to segments after `through`.
    const promoted: Array<{ txId: string; packed: number }> = [];
    this.promotedDuringCut = promoted;
    let split: Awaited<ReturnType<OutcomeTable['partition']>>;
    try {
      split = await this.outcomes.partition(forgetCompletedAtOrBefore);
    } finally {
      this.promotedDuringCut = undefined;
    }
    // One the walk had already judged past retention stays forgotten.
    const forgotten = promoted.length > 0 ? new Set(split.forget) : undefined;
    for (const p of promoted) {
      if (forgotten?.has(p.txId)) continue;
      split.keptIds.push(p.txId);
      split.keptPacked.push(p.packed);
    }
    for (const id of split.forget) forget.push(id);
    for (const r of reduce) {
      if (!('packed' in r)) continue;
      split.keptIds.push(r.txId);
      split.keptPacked.push(r.packed);
    }
    return { records, forget, reduce, outcomes: { ids: split.keptIds, packed: split.keptPacked }, kept: this.size - forget.length };
  }

  /**
   * Replaces reduced transactions by their outcome record once the snapshot
   * holding it is installed. A record appended for one of them since the cut
   * lives in a later segment and is replayed after it, so memory keeps it too
   * (in full, behind the outcome record).
   */
  async reduce(reduced: CompactionCut['reduce'], through: number): Promise<void> {
    for (let i = 0; i < reduced.length; i++) {
      // Each transaction is replaced in one go, and a record appended to one not reached yet is
      // after `through` (kept below): so the work can take a few turns without stalling requests.
      if (i % ENTRIES_PER_TURN === ENTRIES_PER_TURN - 1) await new Promise<void>((res) => setImmediate(res));
      const r = reduced[i];
      const old = this.txs.get(r.txId);
      const later: StoredRecord[] = [];
      for (const s of old?.stored ?? []) if (s.seq > through) later.push(s);
      if (later.length === 0 && 'packed' in r) {
        this.txs.delete(r.txId);
        this.outcomes.setPacked(r.txId, r.packed);
        continue;
      }
      const e = new TxEntry(r.txId);
      // Offset -1 for a packed one: the next snapshot encodes it again.
      e.apply('packed' in r ? { record: unpackOutcome(r.txId, r.packed), seq: through, offset: -1, inSnapshot: false } : r.stored);
      for (const s of later) e.apply(s);
      this.txs.set(r.txId, e);
    }
  }

  /**
   * Drops forgotten transactions once their snapshot is installed. A record
   * appended for one of them since the cut lives in a later segment and will be
   * replayed on its own after a restart, so memory keeps exactly that too.
   */
  async forget(txIds: string[], through: number): Promise<void> {
    for (let i = 0; i < txIds.length; i++) {
      // As in reduce: one transaction at a time, a turn now and then.
      if (i % ENTRIES_PER_TURN === ENTRIES_PER_TURN - 1) await new Promise<void>((res) => setImmediate(res));
      const txId = txIds[i];
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
