import type { ParticipantBranchState, PreparedBranch } from '../../../participant-sdk/src/client';
import type { BranchInfo, Vote } from './types';

// Defined in the participant SDK, which runs the same PostgreSQL branch code (and never imports the coordinator).
export type { ParticipantBranchState, PreparedBranch } from '../../../participant-sdk/src/client';

/** A branch as a participant adapter sees it (with the xid its yes vote carried, once it voted). */
export interface BranchRef extends BranchInfo {
  txId: string;
}

/**
 * The seam between the engine and whatever holds a branch's data. The direct
 * PostgreSQL adapter and the HTTP adapter implement it.
 *
 * Rules:
 * - `prepare` answers a vote; any throw before the decision counts as "no".
 * - `commit` and `rollback` resolve only when the participant acknowledged.
 *   They are retried until then, so they must be idempotent: "no such
 *   prepared transaction" after an earlier success is success.
 * - They throw `outcome-unknown` / `participant-unavailable` when a retry may
 *   help, `heuristic-hazard` when it cannot (the branch's outcome contradicts
 *   the decision or is unknowable), and `transaction-aborted` when a
 *   one-phase commit failed.
 */
export interface Participant {
  readonly name: string;
  prepare(branch: BranchRef): Promise<Vote>;
  /**
   * `onePhase`: the branch was never prepared and is its transaction's only one: commit it directly.
   * `retry`: an earlier one-phase attempt's outcome is unknown (it may have committed), so a retry
   * that cannot reach the participant proves nothing and is `outcome-unknown`, never `transaction-aborted`.
   */
  commit(branch: BranchRef, options?: { onePhase?: boolean; retry?: boolean }): Promise<void>;
  rollback(branch: BranchRef): Promise<void>;
  /** Prepared transactions whose GID starts with `prefix_`, for sweeps. Absent when the participant cannot be queried directly. */
  listPrepared?(prefix: string): Promise<PreparedBranch[]>;
  /**
   * What the participant knows of a branch. Recovery asks it of an undecided
   * transaction's only branch: a one-phase commit leaves no decision record,
   * and its branch must not be reported aborted when it committed.
   */
  status?(branch: BranchRef): Promise<ParticipantBranchState>;
  /**
   * What the participant records of a branch, reading only: unlike `status`
   * it ends nothing, so a branch another process holds is left alone (it
   * reads `active` or `unknown`). For checks that must not change what they
   * look at: an operator's commit checks that every branch is prepared, and
   * a refused commit must leave every branch as it was.
   */
  recordedState?(branch: BranchRef): Promise<ParticipantBranchState>;
  /**
   * The xid a yes vote for this prepared branch carries (see BranchInfo.xid),
   * reading only; undefined when it is not prepared or the participant proves
   * commits otherwise. An operator's commit puts it in the decision it writes,
   * as a live commit does with the votes.
   */
  preparedXid?(branch: BranchRef): Promise<string | undefined>;
  close(): Promise<void>;
}
