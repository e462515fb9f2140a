/**
 * twopc: two-phase commit across PostgreSQL databases.
 *
 * @example
 * const coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: './data' }), databases: [ledgerA, ledgerB] });
 * await coordinator.transaction(async (tx) => { await tx.db('ledger_a').query(...); await tx.db('ledger_b').query(...); });
 */
export { Coordinator } from './in-process/coordinator';
export type { CoordinatorOptions, TransactionOptions } from './in-process/coordinator';
export type { InstanceOptions } from './in-process/shared-log-lease';
export { TransactionScope } from './in-process/transaction-scope';
export type { BranchOpener, BranchQueryable, QueryResultLike } from './in-process/transaction-scope';
export { TransactionEngine } from './engine/transaction-engine';
export type { BeginOptions, EngineDeps, StartReport } from './engine/transaction-engine';
export type { EngineAdmin, RetryResult } from './engine/engine-admin';
export { parseEngineConfig } from './engine/engine-config';
export type { EngineConfig, EngineConfigInput } from './engine/engine-config';
export { ParticipantRegistry } from './engine/participant-registry';
export { CrashPoints, CRASH_POINTS, CRASH_ENV } from './engine/crash-points';
export type { CrashPoint } from './engine/crash-points';
export type { EngineLogger } from './engine/ports/logger';
export type { EngineObserver } from './engine/engine-observer';
export type { TransactionStatus, BranchStatus } from './engine/transaction-status';
export type { RecoveryOptions, RecoveryReport } from './engine/recovery';
export type { SweepReport } from './engine/sweeper';
export type { Orphan, OrphanScan, OrphanRollback, ResolveResult } from './engine/admin-operations';
export type { CommitResult } from './engine/live-transaction';
export * from './engine/ports/types';
export * from './engine/ports/protocol';
export type * from './engine/ports/decision-log';
export { FileDecisionLog } from './log/file/file-decision-log';
export { createDecisionLog } from './log/create-decision-log';
export type { CreateDecisionLogOptions } from './log/create-decision-log';
export type { FileDecisionLogOptions } from './log/file/file-decision-log';
export type { BranchRef, Participant, ParticipantBranchState, PreparedBranch } from './engine/ports/participant';
export { buildGid, parseGid, validateGid, validatePrefix } from './engine/ports/protocol';
export * from '../participant-sdk/src/postgres';
// The coordinator's direct PostgreSQL participant: the SDK's, with commitProof 'xid' by default (shadows the SDK's name above).
export { DEFAULT_COMMIT_PROOF, PostgresParticipant } from './participants/postgres/postgres-participant';
