import type { CompleteRecord } from '../engine/ports/decision-log';
import type { Outcome } from '../engine/ports/types';
import { formatUuid, hashWords, parseUuid } from './uuid-words';

// How a transaction ended, as a code in the low two bits of its packed entry.
const CODES: readonly (Outcome | undefined)[] = [undefined, 'commit', 'abort'];
// |at| * 4 + 3 must stay a safe integer, so the number holds both exactly.
const MAX_AT = Math.floor(Number.MAX_SAFE_INTEGER / 4) - 1;
// Entries a partition walks per turn of the event loop (a few milliseconds' worth).
const PARTITION_CHUNK = 20_000;
// Index slot states besides an entry number.
const EMPTY = -1;
const DELETED = -2;
// Entry capacity of an empty table, and how much room a resize leaves above the live entries.
const MIN_CAPACITY = 1024;
const GROWTH = 1.5;
// The hash index is a power of two at least this much larger than the entry capacity (load <= 0.75).
const INDEX_SLACK = 4 / 3;

/** Whether an outcome record completed at `at` fits a table entry (every `Date.now()` does). */
export function packableAt(at: number): boolean {
  return Number.isSafeInteger(at) && Math.abs(at) <= MAX_AT;
}

/** An outcome record as a table entry's number, or undefined when its time cannot be packed. */
export function packOutcome(record: CompleteRecord): number | undefined {
  if (!packableAt(record.at)) return undefined;
  return record.at * 4 + (record.outcome === undefined ? 0 : CODES.indexOf(record.outcome));
}

function packedAt(packed: number): number {
  return (packed - (((packed % 4) + 4) % 4)) / 4;
}

/** The outcome record a packed entry stands for: frozen, in the shape normalizeRecord gives. */
export function unpackOutcome(txId: string, packed: number): CompleteRecord {
  const outcome = CODES[((packed % 4) + 4) % 4];
  const at = packedAt(packed);
  // `at + 0`: -0 would serialize as 0, and memory must hold what a reopen reads back.
  return Object.freeze(outcome === undefined ? { type: 'complete', txId, at: at + 0 } : { type: 'complete', txId, at: at + 0, outcome });
}

/**
 * Completed transactions held only as their outcome record (how they ended,
 * when): what a status read or a retried commit needs for the retention
 * period, once their full records are gone. Compact, off the JS heap: each
 * id (a canonical lower-case UUID) as its 16 bytes in an Int32Array, its
 * completion time × 4 + outcome code in a Float64Array beside it, in
 * insertion order, and an open-addressing hash index (linear probing,
 * tombstones) of entry numbers: about 30–45 bytes per transaction
 * (`test/log/file-log-memory` measures it), against about 120 for a Map
 * entry and a few KiB for a transaction's folded records. An id that is not
 * a canonical UUID goes to a small Map beside it. Insertion order is about
 * completion order (compactions reduce the oldest first), which is the order
 * retention ends in: the entry arrays keep it (a deleted entry leaves a hole
 * that the next resize squeezes out), and an entry set again keeps its place,
 * as in a Map.
 */
export class OutcomeTable {
  private keys = new Int32Array(MIN_CAPACITY * 4);
  private values = new Float64Array(MIN_CAPACITY);
  private index = new Int32Array(indexCapacity(MIN_CAPACITY)).fill(EMPTY);
  /** Entries appended since the last resize (live or deleted); the next one goes at `length`. */
  private length = 0;
  private live = 0;
  /** No live entry before this one (oldestAt moves it up). */
  private head = 0;
  /** Partitions under way: while one walks, a resize keeps every entry where it is. */
  private walks = 0;
  private readonly others = new Map<string, number>();
  private readonly word = new Int32Array(4);

  get size(): number {
    return this.live + this.others.size;
  }

  has(txId: string): boolean {
    return parseUuid(txId, this.word) ? this.slotOf() >= 0 : this.others.has(txId);
  }

  /** Holds `record` (a `complete`); false, holding nothing, when its time cannot be packed (see packableAt). */
  set(record: CompleteRecord): boolean {
    const packed = packOutcome(record);
    if (packed === undefined) return false;
    this.setPacked(record.txId, packed);
    return true;
  }

  /** Holds an entry packed by packOutcome. */
  setPacked(txId: string, packed: number): void {
    if (!parseUuid(txId, this.word)) {
      this.others.set(txId, packed);
      return;
    }
    const slot = this.slotOf();
    if (slot >= 0) {
      this.values[this.index[slot]] = packed;
      return;
    }
    if (this.length === this.values.length) this.resize();
    const e = this.length++;
    this.keys.set(this.word, e * 4);
    this.values[e] = packed;
    this.place(e);
    this.live++;
  }

  get(txId: string): CompleteRecord | undefined {
    let packed: number | undefined;
    if (parseUuid(txId, this.word)) {
      const slot = this.slotOf();
      packed = slot >= 0 ? this.values[this.index[slot]] : undefined;
    } else packed = this.others.get(txId);
    return packed === undefined ? undefined : unpackOutcome(txId, packed);
  }

  /** When the first entry held completed (about the oldest: see the class comment), or undefined when empty. */
  oldestAt(): number | undefined {
    while (this.head < this.length && Number.isNaN(this.values[this.head])) this.head++;
    let oldest = this.head < this.length ? packedAt(this.values[this.head]) : undefined;
    for (const packed of this.others.values()) {
      const at = packedAt(packed);
      if (oldest === undefined || at < oldest) oldest = at;
      break;
    }
    return oldest;
  }

  delete(txId: string): boolean {
    if (!parseUuid(txId, this.word)) return this.others.delete(txId);
    const slot = this.slotOf();
    if (slot < 0) return false;
    this.values[this.index[slot]] = NaN;
    this.index[slot] = DELETED;
    this.live--;
    // Retention ending after a burst: give the room back, so memory follows what is held.
    if (this.walks === 0 && this.values.length > MIN_CAPACITY && this.live * 4 < this.values.length) this.resize();
    return true;
  }

  /**
   * Splits the table at a compaction: the entries completed at or before
   * `forgetAtOrBefore` (retention over) by id, and the rest as two parallel
   * arrays the snapshot encodes a chunk at a time; numbers and ids only, no
   * record objects. Entries come in insertion order (those with non-UUID ids
   * last). It yields a turn every PARTITION_CHUNK entries, so a table of
   * millions never holds the event loop: an entry deleted meanwhile (brought
   * back in full by a new record: see TxIndex.entryFor) is skipped, and its
   * holder adds it itself; one added meanwhile is walked too, as in a Map.
   */
  async partition(forgetAtOrBefore: number): Promise<{ forget: string[]; keptIds: string[]; keptPacked: number[] }> {
    const forget: string[] = [];
    const keptIds: string[] = [];
    const keptPacked: number[] = [];
    const limit = Math.floor(forgetAtOrBefore) * 4 + 3;
    let n = 0;
    const visit = (txId: string, packed: number): void => {
      // Packed values order by time first, so comparing them compares completion times.
      if (packed <= limit) forget.push(txId);
      else {
        keptIds.push(txId);
        keptPacked.push(packed);
      }
    };
    this.walks++;
    try {
      // `this.length` and the arrays are read afresh each step: a resize (growth only, while walking) replaces them.
      for (let e = 0; e < this.length; e++) {
        const packed = this.values[e];
        if (!Number.isNaN(packed)) visit(formatUuid(this.keys, e * 4), packed);
        if (++n % PARTITION_CHUNK === 0) await new Promise<void>((r) => setImmediate(r));
      }
      for (const [txId, packed] of this.others) {
        visit(txId, packed);
        if (++n % PARTITION_CHUNK === 0) await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      this.walks--;
    }
    return { forget, keptIds, keptPacked };
  }

  /** The index slot holding the entry keyed by `this.word`, or -1. */
  private slotOf(): number {
    const w = this.word;
    const mask = this.index.length - 1;
    for (let s = hashWords(w[0], w[1], w[2], w[3]) & mask; ; s = (s + 1) & mask) {
      const e = this.index[s];
      if (e === EMPTY) return -1;
      if (e >= 0) {
        const k = e * 4;
        if (this.keys[k] === w[0] && this.keys[k + 1] === w[1] && this.keys[k + 2] === w[2] && this.keys[k + 3] === w[3]) return s;
      }
    }
  }

  /** Puts entry `e` (its key absent from the index) in the first free slot of its probe sequence. */
  private place(e: number): void {
    const k = this.keys;
    const mask = this.index.length - 1;
    let s = hashWords(k[e * 4], k[e * 4 + 1], k[e * 4 + 2], k[e * 4 + 3]) & mask;
    while (this.index[s] >= 0) s = (s + 1) & mask;
    this.index[s] = e;
  }

  /**
   * New arrays sized for the live entries, and the index rebuilt without
   * tombstones. Deleted entries are squeezed out, keeping order, unless a
   * partition is walking: then every entry keeps its number and the arrays
   * only grow. Used slots of the index never exceed the entry capacity, so
   * its load stays under 1 / INDEX_SLACK.
   */
  private resize(): void {
    const squeeze = this.walks === 0;
    const capacity = Math.max(MIN_CAPACITY, Math.ceil((squeeze ? this.live : this.length) * GROWTH));
    const keys = new Int32Array(capacity * 4);
    const values = new Float64Array(capacity);
    let length = 0;
    if (squeeze) {
      for (let e = this.head; e < this.length; e++) {
        if (Number.isNaN(this.values[e])) continue;
        for (let j = 0; j < 4; j++) keys[length * 4 + j] = this.keys[e * 4 + j];
        values[length++] = this.values[e];
      }
      this.head = 0;
    } else {
      keys.set(this.keys.subarray(0, this.length * 4));
      values.set(this.values.subarray(0, this.length));
      length = this.length;
    }
    this.keys = keys;
    this.values = values;
    this.length = length;
    this.index = new Int32Array(indexCapacity(capacity)).fill(EMPTY);
    for (let e = 0; e < length; e++) if (!Number.isNaN(values[e])) this.place(e);
  }
}

/** The hash index's size for `capacity` entries: a power of two, for masking. */
function indexCapacity(capacity: number): number {
  let n = 1;
  while (n < capacity * INDEX_SLACK) n *= 2;
  return n;
}
