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
 * `action` record) with who did it, before it is done.
 */
export const OPERATOR_ACTIONS = ['retry', 'resolve-commit', 'resolve-abort', 'orphan-rollback'] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

/** States of one branch as the coordinator sees it. */
export const BRANCH_STATES = ['active', 'prepared', 'read-only', 'committed', 'rolled-back', 'failed', 'heuristic-hazard'] as const;
export type BranchState = (typeof BRANCH_STATES)[number];

// Shared with the participant SDK, where they are defined (the SDK never imports the coordinator).
export type { BranchInfo, Vote } from '../../../participant-sdk/src';
