import { errorMessage, isTwopcError } from './ports/protocol';
import type { DecisionLog, DecisionRecord } from './ports/decision-log';
import type { BranchInfo } from './ports/types';
import { backoffDelay, sleep } from './ports/backoff';
import type { CrashPoints } from './crash-points';
import type { EngineConfig } from './engine-config';
import type { EngineLogger } from './ports/logger';
import type { EngineObserver } from './engine-observer';
import type { ParticipantRegistry } from './participant-registry';
import { WarningLimiter } from './warning-limiter';
import { PhaseTwoProgress } from './phase-two-progress';

/** Phase-2 retry warnings: at most one per participant per this interval (the retries themselves are counted in metrics). */
const RETRY_WARNING_INTERVAL_MS = 30_000;
/** Transactions whose acknowledged branches are kept after a drive ended with a hazard (a few bytes each). */
const MAX_KEPT_ACKS = 10_000;

export interface PhaseTwoResult {
  /** Every branch acknowledged and `complete` was written. */
  completed: boolean;
  /** Branches whose outcome contradicts the decision or is unknowable: left for an operator. */
  hazards: number;
  /** Gave up because the engine is stopping; recovery resumes it. */
  stopped: boolean;
}

type BranchOutcome = 'acked' | 'hazard' | 'stopped';

interface PhaseTwoDeps {
  log: DecisionLog;
  participants: ParticipantRegistry;
  config: EngineConfig;
  crash: CrashPoints;
  logger: EngineLogger;
  observer: EngineObserver;
  stopSignal: AbortSignal;
}

/**
 * Executes a decision on every branch, retrying each with capped exponential
 * backoff until it is acknowledged. One drive per transaction at a time: the
 * live engine, recovery and sweeps all come through `drive` and share it.
 */
export class PhaseTwoDriver {
  private readonly running = new Map<string, Promise<PhaseTwoResult>>();
  /** Finished transactions whose `complete` record is still being written. */
  private readonly completing = new Set<string>();
  private readonly wakeups = new Map<string, AbortController>();
  /** Per participant, shared with the one-phase commit's retries (one-phase-commit.ts): a participant that is down is one warning per interval. */
  readonly retryWarnings = new WarningLimiter(RETRY_WARNING_INTERVAL_MS);
  /** Failed attempts of the drives in progress, for operators (`engine.admin.phaseTwo`). */
  readonly progress = new PhaseTwoProgress();
  /**
   * Per transaction being driven, the branches that acknowledged: the log records no per-branch
   * acknowledgement (only the decision, then `complete`), so without this a status read during
   * phase 2 shows an already committed branch as still prepared. Dropped when the drive ends.
   */
  private readonly acked = new Map<string, Set<number>>();
  /**
   * The acknowledged branches of transactions whose drive ended with a heuristic hazard: such a
   * transaction stays unfinished until an operator acts, and without these its branches that did
   * finish would show as still prepared while the operator looks. Kept until a later drive of it
   * finishes (at most MAX_KEPT_ACKS, oldest dropped first); lost on restart, as every ack is.
   */
  private readonly ackedBeforeHazard = new Map<string, ReadonlySet<number>>();

  constructor(private readonly deps: PhaseTwoDeps) {}

  isDriving(txId: string): boolean {
    return this.running.has(txId) || this.completing.has(txId);
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** The transactions being driven now, in the order their drive started. */
  driving(): IterableIterator<string> {
    return this.running.keys();
  }

  /**
   * Drives `decision` to completion. `before` holds per-branch promises (PREPAREs
   * still in flight) that must settle first, so a rollback never overtakes them.
   */
  drive(decision: DecisionRecord, before?: Map<number, Promise<unknown>>): Promise<PhaseTwoResult> {
    const existing = this.running.get(decision.txId);
    if (existing) return existing;
    const run = this.run(decision, before).finally(() => {
      this.running.delete(decision.txId);
      this.wakeups.delete(decision.txId);
      this.acked.delete(decision.txId);
      this.progress.forget(decision.txId);
    });
    this.running.set(decision.txId, run);
    // A drive after one that ended with a hazard (an operator's retry) starts from what that one saw.
    const kept = this.ackedBeforeHazard.get(decision.txId);
    if (kept) this.acked.set(decision.txId, new Set(kept));
    return run;
  }

  /**
   * The branches of a transaction that acknowledged its decision, as the drive running now (or the
   * last one, when it ended with a heuristic hazard) saw them; undefined when none did, or it is not
   * driven here.
   */
  acknowledged(txId: string): ReadonlySet<number> | undefined {
    return this.acked.get(txId) ?? this.ackedBeforeHazard.get(txId);
  }

  /** A transaction completed otherwise (an operator's settle): what its last drive saw is no longer needed. */
  forgetAcknowledged(txId: string): void {
    this.ackedBeforeHazard.delete(txId);
  }

  /** Cuts the current backoff wait of a transaction's retries short (operator's `retry`). */
  retryNow(txId: string): boolean {
    const wake = this.wakeups.get(txId);
    if (!wake) return false;
    wake.abort();
    return true;
  }

  /** Resolves when every drive has returned (after a stop they return promptly). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  private async run(decision: DecisionRecord, before?: Map<number, Promise<unknown>>): Promise<PhaseTwoResult> {
    const started = Date.now();
    let firstAck = true;
    const outcomes = await Promise.all(
      decision.branches.map(async (branch) => {
        const preparing = before?.get(branch.branchId);
        // A PREPARE that never answers must not hold a stopping engine: recovery finishes the branch.
        if (preparing && !(await settledUnlessStopped(preparing, this.deps.stopSignal))) return 'stopped' as const;
        const outcome = await this.finishBranch(decision, branch);
        if (outcome === 'acked' && firstAck) {
          firstAck = false;
          this.deps.crash.hit(decision.outcome === 'commit' ? 'after-commit-one' : 'after-rollback-one');
        }
        return outcome;
      }),
    );
    const hazards = outcomes.filter((o) => o === 'hazard').length;
    const stopped = outcomes.includes('stopped');
    if (hazards > 0) this.keepAcked(decision.txId);
    if (hazards > 0 || stopped) return { completed: false, hazards, stopped };
    this.ackedBeforeHazard.delete(decision.txId);
    if (decision.outcome === 'commit') this.deps.crash.hit('after-commit-all');
    // Not forced, and not waited for: every branch acknowledged, so the outcome is settled; a lost
    // `complete` only makes recovery repeat phase 2, which is idempotent. close() flushes it.
    // Until it is stored, recovery passes must not take the transaction for an unfinished one.
    this.completing.add(decision.txId);
    this.deps.log
      .append({ type: 'complete', txId: decision.txId, at: Date.now(), outcome: decision.outcome })
      .catch((e) => {
        this.deps.logger.error({ txId: decision.txId, err: errorMessage(e) }, 'could not log completion; recovery will repeat phase 2');
      })
      .finally(() => this.completing.delete(decision.txId));
    this.deps.observer.phaseLatency?.('phase-two', Date.now() - started);
    return { completed: true, hazards: 0, stopped: false };
  }

  private async finishBranch(decision: DecisionRecord, branch: BranchInfo): Promise<BranchOutcome> {
    const { participants, config, logger, stopSignal } = this.deps;
    const ref = { ...branch, txId: decision.txId };
    for (let attempt = 0; ; attempt += 1) {
      if (stopSignal.aborted) return 'stopped';
      try {
        const participant = participants.forBranch(branch);
        if (decision.outcome === 'commit') await participant.commit(ref);
        else await participant.rollback(ref);
        if (attempt > 0) this.progress.acknowledged(decision.txId, branch.branchId, Date.now());
        this.noteAcked(decision.txId, branch.branchId);
        return 'acked';
      } catch (e) {
        if (isTwopcError(e, 'heuristic-hazard')) {
          await this.recordHazard(decision.txId, branch, errorMessage(e));
          return 'hazard';
        }
        this.deps.observer.phaseTwoRetry?.(branch.participant);
        const delay = backoffDelay(attempt, config.phaseTwoBaseDelayMs, config.phaseTwoMaxDelayMs);
        this.progress.failed(decision.txId, branch, errorMessage(e), Date.now(), delay);
        this.retryWarnings.warn(branch.participant, (heldBack) =>
          logger.warn({ txId: decision.txId, gid: branch.gid, participant: branch.participant, attempt, delay, heldBack, err: errorMessage(e) }, `phase 2 ${decision.outcome} not acknowledged; retrying`),
        );
        if (!(await this.wait(decision.txId, delay))) return 'stopped';
      }
    }
  }

  /** A drive that ended with a hazard: what it saw acknowledged stays visible (see ackedBeforeHazard). */
  private keepAcked(txId: string): void {
    const acked = this.acked.get(txId);
    this.ackedBeforeHazard.delete(txId);
    if (!acked) return;
    this.ackedBeforeHazard.set(txId, acked);
    if (this.ackedBeforeHazard.size > MAX_KEPT_ACKS) this.ackedBeforeHazard.delete(this.ackedBeforeHazard.keys().next().value as string);
  }

  private noteAcked(txId: string, branchId: number): void {
    // Only while the drive runs (drive's finally drops it): an ack of a drive that already ended would leak.
    if (!this.running.has(txId)) return;
    let branches = this.acked.get(txId);
    if (!branches) {
      branches = new Set();
      this.acked.set(txId, branches);
    }
    branches.add(branchId);
  }

  /** Waits out a backoff; false when the engine is stopping. `retryNow` ends the wait early. */
  private async wait(txId: string, delay: number): Promise<boolean> {
    let wake = this.wakeups.get(txId);
    if (!wake || wake.signal.aborted) {
      wake = new AbortController();
      this.wakeups.set(txId, wake);
    }
    await sleep(delay, AbortSignal.any([wake.signal, this.deps.stopSignal]));
    return !this.deps.stopSignal.aborted;
  }

  /**
   * One attempt at rolling back a prepared branch of a completed, aborted
   * transaction: one its decision does not list (a sweep found it on its own
   * after phase 2 had finished the listed ones), or a listed one that
   * prepared after phase 2's rollback found nothing (an eager branch whose
   * PREPARE came late). Abort covers every branch,
   * so it is rolled back; nothing else is written (the transaction is
   * complete already, and a second `complete` could outlive its forgotten
   * history). Resolves false when it must be tried again (the next pass does).
   */
  async rollbackStray(txId: string, branch: BranchInfo): Promise<boolean> {
    try {
      await this.deps.participants.forBranch(branch).rollback({ ...branch, txId });
      return true;
    } catch (e) {
      if (isTwopcError(e, 'heuristic-hazard')) {
        await this.recordHazard(txId, branch, errorMessage(e));
        return true;
      }
      this.retryWarnings.warn(branch.participant, (heldBack) =>
        this.deps.logger.warn({ txId, gid: branch.gid, participant: branch.participant, heldBack, err: errorMessage(e) }, 'rollback of a stray prepared branch not acknowledged; the next pass retries'),
      );
      return false;
    }
  }

  /**
   * A branch whose outcome contradicts or cannot confirm the decision (or, for
   * a one-phase commit, the commit): retrying cannot help. Logged, counted and
   * recorded for an operator (`list --state heuristic`); recovery leaves it alone.
   */
  async recordHazard(txId: string, branch: BranchInfo, detail: string): Promise<void> {
    this.deps.logger.error({ txId, gid: branch.gid, participant: branch.participant, detail }, 'HEURISTIC HAZARD: branch outcome contradicts or cannot confirm the decision; operator action needed');
    this.deps.observer.hazard?.(txId, branch.participant);
    await this.deps.log
      .append({ type: 'hazard', txId, at: Date.now(), branchId: branch.branchId, gid: branch.gid, participant: branch.participant, detail })
      .catch((e) => this.deps.logger.error({ txId, err: errorMessage(e) }, 'could not log the hazard'));
  }
}

/** Waits for `promise` to settle; false if the signal aborted first. */
function settledUnlessStopped(promise: Promise<unknown>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => resolve(true),
      () => resolve(true),
    ).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
