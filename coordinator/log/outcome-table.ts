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
// Entries per chunk of the entry arrays (16 bytes of id and 8 of value each: 384 KiB a chunk).
const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;
// Entry numbers are a chunk's sequence number (modulo this) and an offset: below 2^31, and stable for an entry's life.
const SEQ_MASK = (1 << (31 - CHUNK_BITS)) - 1;
// The hash index is split in shards by the hash's top bits, each resized on its own, so no resize walks more than 1/SHARDS of the table.
const SHARD_BITS = 8;
const MIN_SLOTS = 16;

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

interface Chunk {
  readonly keys: Int32Array;
  /** The packed outcome of each entry; NaN for one deleted. */
  readonly values: Float64Array;
  /** Entries appended (live or deleted). */
  used: number;
  live: number;
  /** No live entry before this offset (oldestAt moves it up). */
  head: number;
}

interface Shard {
  slots: Int32Array;
  /** Slots holding an entry number or a tombstone. */
  filled: number;
  live: number;
}

/**
 * Completed transactions held only as their outcome record (how they ended,
 * when): what a status read or a retried commit needs for the retention
 * period, once their full records are gone. Compact and off the JS heap: an
 * id that is a canonical lower-case UUID is held as its 16 bytes in an
 * Int32Array, its completion time × 4 + outcome code in a Float64Array beside
 * it, appended to chunks of CHUNK entries in insertion order; an
 * open-addressing hash index (linear probing, tombstones) maps the id to its
 * entry. About 33 bytes per transaction at 480,000 (40–45 in
 * `test/log/file-log-memory`, a partly filled chunk included) against about
 * 120 for a Map entry, and a few KiB for a
 * transaction's folded records. An id that is not a canonical UUID goes to a
 * small Map beside it.
 *
 * Insertion order is about completion order (compactions reduce the oldest
 * first), which is the order retention ends in: the chunks keep it, an entry
 * set again keeps its place (as in a Map), and a chunk is dropped once every
 * entry in it is deleted, which retention does oldest first. No operation
 * copies the table: a new chunk is allocated as the last one fills, and the
 * index is split in 2^SHARD_BITS shards, each rebuilt alone when it fills.
 */
export class OutcomeTable {
  private readonly chunks: Chunk[] = [];
  /** The sequence number of chunks[0]. */
  private headSeq = 0;
  private readonly shards: Shard[] = Array.from({ length: 1 << SHARD_BITS }, () => ({ slots: new Int32Array(MIN_SLOTS).fill(EMPTY), filled: 0, live: 0 }));
  private live = 0;
  /** Partitions under way: while one walks, no chunk is dropped, so its position stays valid. */
  private walks = 0;
  private readonly others = new Map<string, number>();
  private readonly word = new Int32Array(4);

  get size(): number {
    return this.live + this.others.size;
  }

  has(txId: string): boolean {
    return parseUuid(txId, this.word) ? this.entryOf(this.hash()) >= 0 : this.others.has(txId);
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
    const h = this.hash();
    const e = this.entryOf(h);
    if (e >= 0) {
      this.chunkOf(e).values[e & (CHUNK - 1)] = packed;
      return;
    }
    let tail = this.chunks[this.chunks.length - 1];
    if (!tail || tail.used === CHUNK) {
      tail = { keys: new Int32Array(CHUNK * 4), values: new Float64Array(CHUNK), used: 0, live: 0, head: 0 };
      this.chunks.push(tail);
    }
    const offset = tail.used++;
    tail.keys.set(this.word, offset * 4);
    tail.values[offset] = packed;
    tail.live++;
    this.live++;
    const entry = (((this.headSeq + this.chunks.length - 1) & SEQ_MASK) << CHUNK_BITS) | offset;
    const shard = this.shards[h >>> (32 - SHARD_BITS)];
    if (place(shard.slots, h, entry)) shard.filled++;
    shard.live++;
    if (shard.filled * 4 > shard.slots.length * 3) this.rebuild(shard);
  }

  get(txId: string): CompleteRecord | undefined {
    let packed: number | undefined;
    if (parseUuid(txId, this.word)) {
      const e = this.entryOf(this.hash());
      packed = e >= 0 ? this.chunkOf(e).values[e & (CHUNK - 1)] : undefined;
    } else packed = this.others.get(txId);
    return packed === undefined ? undefined : unpackOutcome(txId, packed);
  }

  /** When the first entry held completed (about the oldest: see the class comment; a non-UUID id's counts if older), or undefined when empty. */
  oldestAt(): number | undefined {
    this.dropEmpty();
    let oldest: number | undefined;
    for (const c of this.chunks) {
      while (c.head < c.used && Number.isNaN(c.values[c.head])) c.head++;
      if (c.head < c.used) {
        oldest = packedAt(c.values[c.head]);
        break;
      }
    }
    for (const packed of this.others.values()) {
      const at = packedAt(packed);
      if (oldest === undefined || at < oldest) oldest = at;
      break;
    }
    return oldest;
  }

  /**
   * How many entries completed at or before `atOrBefore`, counting up to
   * `enough` (then stops): a synchronous walk of the packed values, no
   * allocation; a few milliseconds for millions of entries.
   */
  countCompletedBy(atOrBefore: number, enough = Infinity): number {
    const limit = Math.floor(atOrBefore) * 4 + 3;
    let n = 0;
    for (const c of this.chunks) {
      const values = c.values;
      // NaN (deleted) compares false.
      for (let o = c.head; o < c.used; o++) if (values[o] <= limit && ++n >= enough) return n;
    }
    for (const packed of this.others.values()) if (packed <= limit && ++n >= enough) return n;
    return n;
  }

  delete(txId: string): boolean {
    if (!parseUuid(txId, this.word)) return this.others.delete(txId);
    const h = this.hash();
    const shard = this.shards[h >>> (32 - SHARD_BITS)];
    const s = this.slotOf(shard, h);
    if (s < 0) return false;
    const e = shard.slots[s];
    shard.slots[s] = DELETED;
    shard.live--;
    const chunk = this.chunkOf(e);
    chunk.values[e & (CHUNK - 1)] = NaN;
    chunk.live--;
    this.live--;
    this.dropEmpty();
    // Retention ending after a burst: the index gives its room back too.
    if (shard.slots.length > MIN_SLOTS && shard.live * 8 < shard.slots.length) this.rebuild(shard);
    return true;
  }

  /**
   * Splits the table at a compaction: the entries completed at or before
   * `forgetAtOrBefore` (retention over) by id, and the rest as two parallel
   * arrays the snapshot encodes a chunk at a time; numbers and ids only, no
   * record objects. Entries come in insertion order (non-UUID ids last). It
   * yields a turn every PARTITION_CHUNK entries, so a table of millions never
   * holds the event loop: an entry deleted meanwhile (brought back in full by
   * a new record: see TxIndex.entryFor) is skipped, and its holder adds it
   * itself; one added meanwhile is walked too, as in a Map.
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
      // Chunks are only appended while walking, and `used` read afresh: what is added meanwhile is walked too.
      for (let i = 0; i < this.chunks.length; i++) {
        const c = this.chunks[i];
        for (let o = 0; o < c.used; o++) {
          const packed = c.values[o];
          if (!Number.isNaN(packed)) visit(formatUuid(c.keys, o * 4), packed);
          if (++n % PARTITION_CHUNK === 0) await new Promise<void>((r) => setImmediate(r));
        }
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

  private hash(): number {
    const w = this.word;
    return hashWords(w[0], w[1], w[2], w[3]);
  }

  private chunkOf(entry: number): Chunk {
    return this.chunks[((entry >>> CHUNK_BITS) - this.headSeq) & SEQ_MASK];
  }

  /** The entry keyed by `this.word` (hashed to `h`), or -1. */
  private entryOf(h: number): number {
    const shard = this.shards[h >>> (32 - SHARD_BITS)];
    const s = this.slotOf(shard, h);
    return s < 0 ? -1 : shard.slots[s];
  }

  /** The slot of `shard` holding the entry keyed by `this.word`, or -1. */
  private slotOf(shard: Shard, h: number): number {
    const w = this.word;
    const slots = shard.slots;
    const mask = slots.length - 1;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const e = slots[s];
      if (e === EMPTY) return -1;
      if (e >= 0) {
        const keys = this.chunkOf(e).keys;
        const k = (e & (CHUNK - 1)) * 4;
        if (keys[k] === w[0] && keys[k + 1] === w[1] && keys[k + 2] === w[2] && keys[k + 3] === w[3]) return s;
      }
    }
  }

  /** A shard's index anew, without tombstones, sized for its live entries (load 1/4 to 1/2 after, resized again at 3/4). */
  private rebuild(shard: Shard): void {
    let size = MIN_SLOTS;
    while (size < shard.live * 2) size *= 2;
    const slots = new Int32Array(size).fill(EMPTY);
    for (const e of shard.slots) {
      if (e < 0) continue;
      const keys = this.chunkOf(e).keys;
      const k = (e & (CHUNK - 1)) * 4;
      place(slots, hashWords(keys[k], keys[k + 1], keys[k + 2], keys[k + 3]), e);
    }
    shard.slots = slots;
    shard.filled = shard.live;
  }

  /** Drops leading chunks with no live entry (retention deletes oldest first), unless a partition is walking them. */
  private dropEmpty(): void {
    if (this.walks > 0) return;
    while (this.chunks.length > 0 && this.chunks[0].live === 0 && (this.chunks[0].used === CHUNK || this.chunks.length === 1)) {
      this.chunks.shift();
      this.headSeq = (this.headSeq + 1) & SEQ_MASK;
    }
  }
}

/** Puts `entry` (its key absent) in the first free slot of its probe sequence; whether that slot was empty rather than a tombstone. */
function place(slots: Int32Array, h: number, entry: number): boolean {
  const mask = slots.length - 1;
  let s = h & mask;
  while (slots[s] >= 0) s = (s + 1) & mask;
  const wasEmpty = slots[s] === EMPTY;
  slots[s] = entry;
  return wasEmpty;
}
