import type { OrphanRollback, OrphanScan, ResolveResult } from '../engine/admin-operations';
import type { RecoveryReport } from '../engine/recovery';
import type { RetryResult } from '../engine/engine-admin';
import type { SettleResult } from '../engine/settle-operation';
import type { ListOptions, TransactionList } from '../engine/transaction-listing';
import type { TransactionStatus } from '../engine/transaction-status';
import type { Outcome } from '../engine/ports/types';
import type { CompactReport } from '../engine/ports/decision-log';
import type { VerifyReport } from '../log/file/log-verify';
import type { HistoryAnswer } from '../service/admin-schemas';
import type { InstancesReport } from '../cluster/instances-report';

/**
 * What the operator commands need, whichever way they reach the coordinator:
 * through a running coordinator's admin API (`AdminClient`, online) or on the
 * log of a stopped one (`LocalAdmin`, offline). Both answer the same shapes,
 * so every command prints (and `--json` emits) the same in both modes.
 */
export interface AdminBackend {
  readonly mode: 'online' | 'offline';
  /** Where it works: the coordinator's URL, or the log directory. */
  readonly where: string;
  list(options: ListOptions): Promise<TransactionList>;
  /** Throws `not-found`. */
  show(txId: string): Promise<TransactionStatus>;
  history(txId: string): Promise<HistoryAnswer>;
  /** One recovery pass; `waitMs` bounds the wait for phase 2 (online: the coordinator's default when absent). */
  recover(options: { waitMs?: number; onProgress?(report: Readonly<RecoveryReport>): void }): Promise<RecoveryReport>;
  retry(txId: string, waitMs?: number): Promise<RetryResult>;
  resolve(txId: string, outcome: Outcome): Promise<ResolveResult>;
  /** Ends a transaction with a heuristic hazard that an operator reconciled by hand; `note` says how (recorded). */
  settle(txId: string, note: string, outcome?: Outcome): Promise<SettleResult>;
  orphans(): Promise<OrphanScan>;
  rollbackOrphans(): Promise<OrphanRollback[]>;
  compactLog(): Promise<CompactReport>;
  verifyLog(): Promise<VerifyReport>;
  /** The instances sharing the log (offline, on a file log: none hold leases). */
  instances(): Promise<InstancesReport>;
  /** Releases connections (offline: stops phase 2, flushes and unlocks the log). */
  close(): Promise<void>;
}
