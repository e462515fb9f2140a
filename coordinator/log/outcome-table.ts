import type { CompleteRecord } from '../engine/ports/decision-log';
import type { Outcome } from '../engine/ports/types';

// How a transaction ended, as a code in the low two bits of its packed entry.
const CODES: readonly (Outcome | undefined)[] = [undefined, 'commit', 'abort'];
// |at| * 4 + 3 must stay a safe integer, so the number holds both exactly.
const MAX_AT = Math.floor(Number.MAX_SAFE_INTEGER / 4) - 1;
// Entries a partition walks per turn of the event loop (a few milliseconds' worth).
const PARTITION_CHUNK = 20_000;

/** Whether an outcome record completed at `at` fits a table entry (every `Date.now()` does). */
export function packableAt(at: number): boolean {
  return Number.isSafeInteger(at) && Math.abs(at) <= MAX_AT;
}

/** An outcome record as a table entry's number, or undefined when its time cannot be packed. */
export function packOutcome(record: CompleteRecord): number | undefined {
  if (!packableAt(record.at)) return undefined;
  return record.at * 4 + (record.outcome === undefined ? 0 : CODES.indexOf(record.outcome));
}

/** The outcome record a packed entry stands for: frozen, in the shape normalizeRecord gives. */
export function unpackOutcome(txId: string, packed: number): CompleteRecord {
  const code = ((packed % 4) + 4) % 4;
  const at = (packed - code) / 4;
  const outcome = CODES[code];
  // `at + 0`: -0 would serialize as 0, and memory must hold what a reopen reads back.
  return Object.freeze(outcome === undefined ? { type: 'complete', txId, at: at + 0 } : { type: 'complete', txId, at: at + 0, outcome });
}

/**
 * Completed transactions held only as their outcome record (how they ended,
 * when): what a status read or a retried commit needs for the retention
 * period, once their full records are gone. One map entry each, the txId to
 * one number (completion time × 4 + outcome code): about 120 bytes per
 * transaction on a 64-bit heap (the id string, the map slot, the number),
 * against a few KiB for a transaction's folded records. Insertion order is
 * about completion order (compactions reduce the oldest first), which is the
 * order retention ends in.
 */
export class OutcomeTable {
  private readonly map = new Map<string, number>();

  get size(): number {
    return this.map.size;
  }

  has(txId: string): boolean {
    return this.map.has(txId);
  }

  /** Holds `record` (a `complete`); false, holding nothing, when its time cannot be packed (see packableAt). */
  set(record: CompleteRecord): boolean {
    const packed = packOutcome(record);
    if (packed === undefined) return false;
    this.map.set(record.txId, packed);
    return true;
  }

  /** Holds an entry packed by packOutcome. */
  setPacked(txId: string, packed: number): void {
    this.map.set(txId, packed);
  }

  get(txId: string): CompleteRecord | undefined {
    const packed = this.map.get(txId);
    return packed === undefined ? undefined : unpackOutcome(txId, packed);
  }

  /** When the first entry held completed (about the oldest: see the class comment), or undefined when empty. */
  oldestAt(): number | undefined {
    for (const [txId, packed] of this.map) return unpackOutcome(txId, packed).at;
    return undefined;
  }

  delete(txId: string): boolean {
    return this.map.delete(txId);
  }

  /**
   * Splits the table at a compaction: the entries completed at or before
   * `forgetAtOrBefore` (retention over) by id, and the rest as two parallel
   * arrays the snapshot encodes a chunk at a time; numbers and ids only, no
   * record objects. It yields a turn every PARTITION_CHUNK entries, so a
   * table of millions never holds the event loop: an entry deleted meanwhile
   * (brought back in full by a new record: see TxIndex.entryFor) is skipped,
   * and its holder adds it itself.
   */
  async partition(forgetAtOrBefore: number): Promise<{ forget: string[]; keptIds: string[]; keptPacked: number[] }> {
    const forget: string[] = [];
    const keptIds: string[] = [];
    const keptPacked: number[] = [];
    const limit = Math.floor(forgetAtOrBefore) * 4 + 3;
    let n = 0;
    for (const [txId, packed] of this.map) {
      // Packed values order by time first, so comparing them compares completion times.
      if (packed <= limit) forget.push(txId);
      else {
        keptIds.push(txId);
        keptPacked.push(packed);
      }
      if (++n % PARTITION_CHUNK === 0) await new Promise<void>((r) => setImmediate(r));
    }
    return { forget, keptIds, keptPacked };
  }
}
