import { errorMessage, type AbortReason } from './ports/protocol';
import type { EngineLogger } from './ports/logger';
import type { AppendOptions, BeginRecord, DecisionLog, DecisionRecord } from './ports/decision-log';
import type { BranchInfo, BranchState, TxState } from './ports/types';
import type { Deadlined } from './deadline-queue';

/** A branch as this process tracks it while its transaction is live. */
export interface LiveBranch {
  /** Frozen: the decision log keeps this same object in its records instead of a copy of its own. */
  info: BranchInfo;
  state: BranchState;
  /** Settles when this branch's PREPARE call settled; phase 2 waits for it so a rollback never overtakes a PREPARE in flight. */
  preparing?: Promise<unknown>;
  /**
   * Enlisted `eager`: the participant prepares it on its own right after the
   * registration is written. A prepared branch may only ever be committed
   * under a forced commit decision, so such a branch is never one-phase committed.
   */
  eager: boolean;
}

const NO_BRANCHES: readonly LiveBranch[] = Object.freeze([]);

/**
 * A transaction begun by this process and not yet ended. Tens of thousands
 * may be running at once, so what one holds is kept small (issue 16): one
 * object of fixed shape, its branches in an array of exactly their number,
 * no timer of its own (the engine's DeadlineQueue holds its deadline), and
 * no promise once its registrations are written.
 */
export class LiveTransaction implements Deadlined {
  state: TxState = 'active';
  /** In enlist order; replaced, never grown in place, so it holds exactly its branches. */
  branches: readonly LiveBranch[] = NO_BRANCHES;
  nextBranchId = 1;
  /**
   * Settles once every registration (enlist record) written so far is written, rejects if
   * one failed; unset once all of them are written. Commit waits for it before any PREPARE.
   */
  registering?: Promise<unknown>;
  /**
   * The begin record, while it is not yet appended (a single-instance log): it is
   * appended with the transaction's first record (see `logBegin`), in the same
   * write, so a transaction never costs a write of its own before it has a branch.
   */
  unloggedBegin?: BeginRecord;
  /** Its place in the engine's DeadlineQueue (-1: not queued: no timeout can abort it any more). */
  deadlineSlot = -1;
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

  constructor(
    readonly id: string,
    readonly createdAt: number,
    /** Kept instead of `expiresAt`: a small integer costs nothing, a timestamp is a boxed number. */
    readonly timeoutMs: number,
    readonly metadata?: Record<string, unknown>,
    /** Created by a commit that carried its branches' registrations (carried-transaction.ts): a retry with the same branches joins it. */
    readonly carried = false,
  ) {}

  get expiresAt(): number {
    return this.createdAt + this.timeoutMs;
  }

  addBranch(branch: LiveBranch): void {
    // `concat` allocates exactly the length it returns (a push or a spread leaves 16 slots spare).
    this.branches = this.branches.concat([branch]);
  }

  /**
   * Adds a registration's write to those a commit waits for. Once all written
   * so far are written, nothing is held; a failed one is held (rejected) so
   * the commit sees it.
   */
  addRegistration(written: Promise<unknown>): void {
    const all = this.registering === undefined ? written : Promise.all([this.registering, written]);
    this.registering = all;
    all.then(
      () => {
        if (this.registering === all) this.registering = undefined;
      },
      () => undefined,
    );
  }
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
export function logBegin(ctx: { log: DecisionLog; logger: EngineLogger }, tx: LiveTransaction, options?: AppendOptions): void {
  const record = tx.unloggedBegin;
  if (!record) return;
  tx.unloggedBegin = undefined;
  ctx.log.append(record, options).catch((e) => ctx.logger.warn({ txId: tx.id, err: errorMessage(e) }, 'could not log begin'));
}

/**
 * A branch's registration, frozen, with no field undefined: the shape the
 * decision log stores (normalizeRecord), so the log keeps this same object
 * in its records instead of a copy of its own.
 */
export function branchInfo(branchId: number, gid: string, participant: string, url?: string): BranchInfo {
  return Object.freeze(url === undefined ? { branchId, gid, participant } : { branchId, gid, participant, url });
}

export function branchList(tx: LiveTransaction): BranchInfo[] {
  return tx.branches.map((b) => b.info);
}
