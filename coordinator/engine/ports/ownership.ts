import type { TxSnapshot } from './decision-log';
import { txIdOwner } from './owned-tx-id';

/**
 * Which logged transactions this coordinator process may act on (recover,
 * sweep, finish). One process on a file log owns them all; several instances
 * on a shared store each own the transactions begun under their lease, plus
 * those of leases they took over (see Membership).
 */
export interface TransactionOwnership {
  /** The fencing token new transactions are stamped with (in their id, and BeginRecord.owner); undefined on a single-instance log. */
  readonly token: number | undefined;
  /** False while this process holds no valid lease (fenced, or the store unreachable past the lease): it must take no new work. */
  readonly holdsLease: boolean;
  /** True when this process may recover or finish this logged transaction now. */
  mayRecover(snapshot: TxSnapshot): boolean;
  /** Called by the engine once the log is open, before recovery (registers the lease). */
  start?(): Promise<unknown>;
  /** Called by the engine before it closes the log (gives the lease up). */
  stop?(): Promise<void>;
}

/** A single coordinator process (file log): every transaction is its own. */
export const soleOwnership: TransactionOwnership = {
  token: undefined,
  holdsLease: true,
  mayRecover: () => true,
};

/**
 * The fencing token of the lease that began a logged transaction: its begin
 * record's, or, when that record was lost (it is not forced), the one its id
 * carries (owned-tx-id.ts). Undefined for a transaction begun on a
 * single-instance log, or whose begin record was lost and whose id was made
 * before ids carried their owner.
 */
export function ownerOf(snapshot: Pick<TxSnapshot, 'txId' | 'owner'>): number | undefined {
  // The begin record first: an id made before ids carried an owner may look like one by chance (1 in 1,024).
  return snapshot.owner ?? txIdOwner(snapshot.txId);
}
