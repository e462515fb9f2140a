import { TransactionAbortedError, TwopcError, isTwopcError } from '../errors';
import type { BranchRef } from '../branch-types';
import type { BackendIdentity, ConnectionContext } from './postgres-connection';
import type { PgErrorClass } from './postgres-errors';
import { classifyPgError } from './postgres-errors';
import type { ClusterHistories } from './cluster-history';
import type { CommitProof } from './postgres-options';
import type { PreparedConnections } from './prepared-connections';

/** What the phase functions share with the participant that owns them. */
export interface BranchEnv extends ConnectionContext {
  schema: string;
  connectionLossWaitMs: number;
  commitProof: CommitProof;
  /** Under commitProof `xid`: each connection's system identifier, read once (see ClusterHistories). */
  histories: ClusterHistories;
  /** Connections kept from PREPARE to phase 2 (option keepPreparedConnectionMs); absent when off. */
  prepared?: PreparedConnections;
  /**
   * Branches whose connection was lost while PREPARE or a one-phase COMMIT
   * may have been on the wire: until that backend is gone, the statement may
   * still take effect, so whoever ends the branch waits for it first.
   */
  inDoubt: Map<string, BackendIdentity>;
  /**
   * Under commitProof `xid`: the xids of prepared branches that phase 2 was
   * asked to end without one, read before their COMMIT/ROLLBACK PREPARED and
   * kept until it is known what became of them (see finishPrepared).
   */
  readXids: Map<string, string>;
}

/** Why a branch failed, as a vote or an abort reports it. */
export interface Failure {
  reason: string;
  sqlState?: string;
}

/**
 * In a failed block (25P02, or a ROLLBACK tag) the real reason is the
 * application's own earlier error, not "current transaction is aborted".
 */
export function failureOf(c: PgErrorClass, lastStatementError: PgErrorClass | undefined, failedBlock = c.sqlState === '25P02'): Failure {
  if (failedBlock && lastStatementError) {
    return withState(`a statement of the branch failed: ${lastStatementError.message}`, lastStatementError.sqlState);
  }
  // 25P01 comes from the guard in front of PREPARE / COMMIT: no transaction block is open any more.
  const reason = c.sqlState === '25P01' ? `the branch's transaction was already ended (a COMMIT or ROLLBACK sent through the branch client?): ${c.message}` : c.message;
  return withState(reason, c.sqlState);
}

export function withState(reason: string, sqlState: string | undefined): Failure {
  return sqlState ? { reason, sqlState } : { reason };
}

/** A retry may help: a lost connection, a busy prepared transaction, a privilege an operator can grant. */
export function outcomeUnknown(env: BranchEnv, what: string, gid: string, err: unknown): TwopcError {
  if (isTwopcError(err)) return err;
  const c = classifyPgError(err);
  return new TwopcError('outcome-unknown', `participant "${env.participant}": ${what} ${gid}: ${c.message}`, { participant: env.participant, gid, sqlState: c.sqlState, kind: c.kind }, { cause: err });
}

export function branchAborted(env: BranchEnv, ref: BranchRef, cause: string, failure: Failure, err?: unknown): TransactionAbortedError {
  return new TransactionAbortedError(
    ref.txId,
    { cause, message: failure.reason, branchId: ref.branchId, participant: env.participant, ...(failure.sqlState ? { sqlState: failure.sqlState } : {}) },
    err === undefined ? undefined : { cause: err },
  );
}

export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
