/** States of a global transaction (SPEC §3). */
export const TX_STATES = ['active', 'preparing', 'committed', 'aborted', 'completed'] as const;
export type TxState = (typeof TX_STATES)[number];

export const OUTCOMES = ['commit', 'abort'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Who asked for a decision. Every one of them goes through the same register. */
export const DECISION_SOURCES = ['engine', 'timeout', 'recovery', 'sweep', 'admin'] as const;
export type DecisionSource = (typeof DECISION_SOURCES)[number];

/**
 * What an operator did to one transaction, recorded in its history (an
 * `action` record) with who did it, before it is done. `settle`: an operator
 * reconciled a heuristic hazard by hand and ends the transaction (its record
 * carries the operator's note).
 */
export const OPERATOR_ACTIONS = ['retry', 'resolve-commit', 'resolve-abort', 'orphan-rollback', 'settle'] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

/** Longest note an operator's action record carries (characters). */
export const MAX_ACTION_NOTE_LENGTH = 1000;

/** States of one branch as the coordinator sees it. */
export const BRANCH_STATES = ['active', 'prepared', 'read-only', 'committed', 'rolled-back', 'failed', 'heuristic-hazard'] as const;
export type BranchState = (typeof BRANCH_STATES)[number];

import type { BranchInfo as SdkBranchInfo, Vote as SdkVote } from '../../../participant-sdk/src/client';

/**
 * One participant's piece of a transaction (the SDK's shape, where it is
 * defined: the SDK never imports the coordinator), plus what the engine
 * learns of it at PREPARE.
 */
export interface BranchInfo extends SdkBranchInfo {
  /**
   * The branch's commit proof at its participant, when its yes vote carried
   * one (a direct PostgreSQL participant with commitProof `xid`):
   * `<system identifier>.<timeline>:<xid8>`, its transaction id and the
   * cluster history that id belongs to (a bare xid8 in records of older
   * versions). Kept with the branch in the commit decision, so phase 2 can ask
   * the participant's commit log what became of the branch when its prepared
   * transaction is gone. Opaque to the engine. Absent in records of older
   * versions, and in decisions written without the votes (see preparedXid).
   */
  xid?: string;
}

/** A participant's answer to prepare; a yes may carry the branch's xid (see BranchInfo.xid). */
export type Vote = Exclude<SdkVote, { vote: 'yes' }> | { vote: 'yes'; xid?: string };
