import { stringify, v7 as uuidv7 } from 'uuid';

/**
 * Transaction ids that carry their owner. On a shared log every instance must
 * be able to tell which instance owns a transaction from what it is given —
 * the id — and the leases, which are forced: never from the begin record,
 * which is not forced (SPEC §3) and so may be lost in a store crash while the
 * owner still runs the transaction (issue 10).
 *
 * The id stays a UUID v7 (SPEC §2) that every validator accepts, time-ordered
 * as before. Of its 128 bits (RFC 9562, as the `uuid` package fills them):
 *
 * | bits    | holds                                                           |
 * | ------- | --------------------------------------------------------------- |
 * | 0–47    | Unix time in ms (`uuid`)                                        |
 * | 48–51   | version 7                                                       |
 * | 52–63   | counter, high 12 bits (`uuid`)                                  |
 * | 64–65   | variant `10`                                                    |
 * | 66–85   | counter, low 20 bits (`uuid`)                                   |
 * | 86–95   | `OWNER_TAG`: this id carries an owner (random in other ids)     |
 * | 96–127  | the owner's fencing token, unsigned, big-endian                 |
 *
 * Uniqueness no longer rests on random bits: `uuid` keeps time and counter
 * strictly increasing within a process (the counter starts at a random value
 * each millisecond and carries into the time when it wraps), and a fencing
 * token belongs to one process start only (issued by the store, never
 * reused), so two ids with a token differ in one or the other.
 */

/** 10 bits that mark an id as carrying its owner. An id made otherwise has them by chance once in 1,024. */
export const OWNER_TAG = 0x2b5;
/** The largest token an id can carry (32 bits). */
export const MAX_OWNER_TOKEN = 0xffff_ffff;

const TX_ID_HEX = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * A new transaction id. With the owner's fencing token (several instances on
 * a shared log), the id carries it; without one (a single process), or with
 * a token past 32 bits, it is a plain UUID v7 — routed, as ids made before
 * ids carried their owner, by the begin record.
 *
 * @example
 * txIdOwner(mintTxId(42)) // 42
 */
export function mintTxId(owner: number | undefined): string {
  if (owner === undefined || !Number.isInteger(owner) || owner < 0 || owner > MAX_OWNER_TOKEN) return uuidv7();
  const bytes = uuidv7(undefined, new Uint8Array(16));
  bytes[10] = (bytes[10] & 0xfc) | (OWNER_TAG >>> 8);
  bytes[11] = OWNER_TAG & 0xff;
  bytes[12] = (owner >>> 24) & 0xff;
  bytes[13] = (owner >>> 16) & 0xff;
  bytes[14] = (owner >>> 8) & 0xff;
  bytes[15] = owner & 0xff;
  return stringify(bytes);
}

/** The owner's fencing token an id carries; undefined for an id without one (made before, or by a single process). */
export function txIdOwner(txId: string): number | undefined {
  if (!TX_ID_HEX.test(txId)) return undefined;
  // The last group is bytes 10–15.
  const tail = txId.slice(-12);
  const tag = ((parseInt(tail.slice(0, 2), 16) & 0x03) << 8) | parseInt(tail.slice(2, 4), 16);
  if (tag !== OWNER_TAG) return undefined;
  return parseInt(tail.slice(4), 16);
}
