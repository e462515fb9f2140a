/**
 * The small vocabulary a branch is described in, shared by the SDK's
 * PostgreSQL branch code and the coordinator's engine (which re-exports it
 * from `coordinator/engine/ports/types.ts` and `coordinator/engine/ports/participant.ts`).
 */

/** One participant's piece of a transaction, as registered before PREPARE. */
export interface BranchInfo {
  branchId: number;
  gid: string;
  participant: string;
  /** Participant endpoint for HTTP participants; absent for direct PostgreSQL ones. */
  url?: string;
}

/** A branch as a participant adapter sees it. */
export interface BranchRef extends BranchInfo {
  txId: string;
}

/** A participant's answer to prepare. */
export type Vote = { vote: 'yes' } | { vote: 'read-only' } | { vote: 'no'; reason: string; sqlState?: string };

/** A branch's state as its participant reports it (same words as the wire protocol's branch status). */
export type ParticipantBranchState = 'active' | 'prepared' | 'committed' | 'rolled-back' | 'unknown';

/** A prepared transaction found on a participant by a sweep. */
export interface PreparedBranch {
  gid: string;
  /** When the participant prepared it (epoch ms). */
  preparedAt: number;
}
