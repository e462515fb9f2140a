import type { LogRecord, TxSnapshot } from '../../engine/ports/decision-log';
import { TxEntry, TxIndex } from '../tx-index';

// The shared stores keep records, not folded state: they fold what they read
// with the file store's TxEntry, so every store answers get() and
// unfinished() with the same rules (first decision wins, first begin dates
// the transaction, branches in branchId order, first complete ends it).

/** The snapshot of one transaction from its records in order, or undefined if it has none. */
export function foldTransaction(txId: string, records: readonly LogRecord[]): TxSnapshot | undefined {
  if (records.length === 0) return undefined;
  const entry = new TxEntry(txId);
  for (const r of records) entry.append(r, 0);
  return entry.auditOnly ? undefined : entry.snapshot();
}

/**
 * Unfinished transactions from their records, transactions in the order first
 * seen and each one's records in order: oldest first (by creation, ties in
 * first-seen order), as the file store lists them.
 */
export function foldUnfinished(records: Iterable<LogRecord>): TxSnapshot[] {
  const index = new TxIndex();
  for (const r of records) index.add(r, 0);
  return index.unfinished();
}
