import { errorMessage, type AbortReason } from './ports/protocol';
import type { EngineLogger } from './ports/logger';
import type { BeginRecord, DecisionLog, DecisionRecord } from './ports/decision-log';
import type { BranchInfo, BranchState, TxState } from './ports/types';

/** A branch as this process tracks it while its transaction is live. */
export interface LiveBranch {
  info: BranchInfo;
  state: BranchState;
  /** Settles when this branch's PREPARE call settled; phase 2 waits for it so a rollback never overtakes a PREPARE in flight. */
  preparing?: Promise<unknown>;
  /**
   * Enlisted `eager`: the participant prepares it on its own right after the
   * registration is written. A prepared branch may only ever be committed
   * under a forced commit decision, so such a branch is never one-phase committed.
   */
  eager?: boolean;
}

/** A transaction begun by this process and not yet ended. */
export interface LiveTransaction {
  id: string;
  createdAt: number;
  expiresAt: number;
  metadata?: Record<string, unknown>;
  state: TxState;
  branches: Map<number, LiveBranch>;
  nextBranchId: number;
  /** Enlist records still being written; every one is written before any PREPARE is sent. */
  enlistWrites: Array<Promise<void>>;
  /**
   * The begin record, while it is not yet appended (a single-instance log): it is
   * appended with the transaction's first record (see `logBegin`), in the same
   * write, so a transaction never costs a write of its own before it has a branch.
   */
  unloggedBegin?: BeginRecord;
  timer?: NodeJS.Timeout;
  /** The running commit (phase 1 + decision), so a repeated commit joins it. */
  committing?: Promise<CommitResult>;
  decision?: DecisionRecord;
  /** A one-phase commit is running: the participant's COMMIT is the decision, so nothing may decide abort. */
  onePhase?: boolean;
  /** The one-phase commit's outcome once known (it may take retries after a lost connection). */
  onePhaseOutcome?: Promise<OnePhaseOutcome>;
  /**
   * Set synchronously when an abort starts, before its decision is written:
   * from then on no branch may enlist, and a commit joins the abort instead of
   * sending PREPARE or a one-phase COMMIT that the abort would not cover.
   */
  aborting?: Promise<void>;
  abortReason?: AbortReason;
  /**
   * This process lost the lease it began the transaction under: another
   * instance owns it now. It writes no commit decision and sends no one-phase
   * COMMIT for it any more (an abort stays allowed: it is always safe).
   */
  handedOver?: boolean;
  /** Created by a commit that carried its branches' registrations (carried-transaction.ts): a retry with the same branches joins it. */
  carried?: boolean;
}

/** `hazard`: the participant reported a heuristic hazard; it is recorded and left to an operator. */
export type OnePhaseOutcome = { kind: 'committed' } | { kind: 'aborted' } | { kind: 'stopped' } | { kind: 'hazard'; detail: string };

/** What `commit` answers. `phaseTwoPending`: the decision is durable but some branch has not acknowledged yet (retrying). */
export interface CommitResult {
  txId: string;
  state: 'committed';
  phaseTwoPending: boolean;
}

/**
 * Appends the transaction's begin record if it has not been yet. Called, in the
 * same synchronous run, right before each of its first records (the first
 * enlist, an abort decision, a `complete`): the log keeps one transaction's
 * records in append order, so the begin still comes first, and the writer
 * puts both in one write. Not forced and not waited for: a lost begin is
 * presumed abort, and its enlist (which commit waits for) is queued behind it.
 */
export function logBegin(ctx: { log: DecisionLog; logger: EngineLogger }, tx: LiveTransaction): void {
  const record = tx.unloggedBegin;
  if (!record) return;
  tx.unloggedBegin = undefined;
  ctx.log.append(record).catch((e) => ctx.logger.warn({ txId: tx.id, err: errorMessage(e) }, 'could not log begin'));
}

export function branchList(tx: LiveTransaction): BranchInfo[] {
  return [...tx.branches.values()].map((b) => b.info);
}
