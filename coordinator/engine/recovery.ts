import { AbortReason, errorMessage, isTwopcError } from './ports/protocol';
import type { DecisionRecord, TxSnapshot } from './ports/decision-log';
import { Semaphore, waitAtMost } from './ports/backoff';
import type { ResolverDeps } from './resolver-deps';
import type { DecisionSource } from './ports/types';

export interface RecoveryReport {
  /** Unfinished transactions found in the log. */
  unfinished: number;
  /** Decisions found in the log and resumed. */
  resumedCommit: number;
  resumedAbort: number;
  /** Undecided transactions decided now (abort, or commit for a one-phase commit that had happened). */
  decidedAbort: number;
  decidedCommit: number;
  /** Finished (every branch acknowledged) within this pass. */
  completed: number;
  /** Still retrying phase 2 in the background. */
  pending: number;
  /** Left alone: a heuristic hazard waits for an operator, or the only branch's state could not be learned. */
  leftForLater: number;
}

export type RecoveryDeps = ResolverDeps;

export interface RecoveryOptions {
  /** Only transactions past their expiry plus the sweep grace (periodic passes: others may still be running elsewhere). */
  onlyExpired?: boolean;
  /** How long to wait for phase 2 before reporting the rest as pending. */
  waitMs?: number;
  /** Told the counts so far each time a transaction is decided or finished (a progress display); must not throw. */
  onProgress?(report: Readonly<RecoveryReport>): void;
}

/**
 * SPEC §4: committed but not completed → resume phase 2; aborted → resume
 * rollback; no decision → decide(abort) through the register, then roll back.
 * Resolves once every transaction has a decision and phase 2 had `waitMs` to run.
 */
export async function recover(deps: RecoveryDeps, options: RecoveryOptions = {}): Promise<RecoveryReport> {
  const { log, config, logger, phaseTwo } = deps;
  const report: RecoveryReport = { unfinished: 0, resumedCommit: 0, resumedAbort: 0, decidedAbort: 0, decidedCommit: 0, completed: 0, pending: 0, leftForLater: 0 };
  const unfinished = await log.unfinished();
  report.unfinished = unfinished.length;
  const now = Date.now();
  const semaphore = new Semaphore(config.recoveryConcurrency);
  const drives: Array<Promise<void>> = [];
  // What this pass would skip at once is left out before any task is queued: a periodic pass with
  // tens of thousands running here must not queue a task for each (they are checked again below,
  // as things change while a task waits for its turn).
  const candidates = unfinished.filter(
    (s) => !deps.isLive(s.txId) && !phaseTwo.isDriving(s.txId) && !(options.onlyExpired && !s.decision && now < s.expiresAt + config.sweepGraceMs),
  );
  await Promise.all(
    candidates.map((snapshot) =>
      semaphore.run(async () => {
        if (deps.isLive(snapshot.txId) || phaseTwo.isDriving(snapshot.txId) || !deps.mayRecover(snapshot)) return;
        if (options.onlyExpired && !snapshot.decision && now < snapshot.expiresAt + config.sweepGraceMs) return;
        // Begun under this process's current lease and not expired: its begin may still be on its way
        // into memory here (or its client about to commit it). Deciding abort for it now could contradict
        // a one-phase commit that never reads the register; once expired, the periodic pass ends it.
        if (!snapshot.decision && now < snapshot.expiresAt && deps.beganUnderThisLease(snapshot)) return;
        if (snapshot.hazards.length > 0) {
          report.leftForLater += 1;
          options.onProgress?.(report);
          return;
        }
        let decision = snapshot.decision;
        if (decision) {
          if (decision.outcome === 'commit') report.resumedCommit += 1;
          else report.resumedAbort += 1;
        } else {
          decision = await decideUndecided(deps, snapshot);
          if (!decision) {
            report.leftForLater += 1;
            options.onProgress?.(report);
            return;
          }
          if (decision.outcome === 'commit') report.decidedCommit += 1;
          else report.decidedAbort += 1;
        }
        options.onProgress?.(report);
        drives.push(
          phaseTwo.drive(decision).then((r) => {
            if (r.completed) report.completed += 1;
            options.onProgress?.(report);
          }),
        );
      }),
    ),
  );
  const waitMs = options.waitMs ?? config.commitWaitMs;
  await waitAtMost(Promise.all(drives), waitMs);
  report.pending = drives.length - report.completed;
  const acted = report.resumedCommit + report.resumedAbort + report.decidedAbort + report.decidedCommit + report.leftForLater;
  if (acted > 0) logger.info({ recovery: report }, 'recovery pass done');
  else if (report.unfinished > 0) logger.debug({ recovery: report }, 'recovery pass: nothing of ours to finish');
  return report;
}

/**
 * No decision in the log. A one-phase commit leaves none, so a transaction
 * whose only branch the participant reports committed was committed; anything
 * else is presumed aborted. Every undecided transaction that anyone ends
 * (recovery, a sweep, an operator's resolve or orphan rollback, a client's
 * late commit or abort) is judged by this one rule.
 *
 * A branch found *prepared* is never rolled back before the register has
 * said abort: only a commit decision can commit a prepared branch (an eager
 * lone branch is committed under a forced decision too, never in one phase),
 * so deciding abort first is safe, while rolling it back first is not (the
 * sweep may not know the whole transaction, and its owner's commit decision
 * may still land: one branch would then be rolled back under a commit).
 *
 * Any other only branch is rolled back *before* its state is judged: a
 * one-phase COMMIT still on its way (from a process that died, or lost its
 * lease while paused) then reaches a branch that is rolled back and is
 * refused, so the state read next is final and the decision cannot
 * contradict what the participant does. (Nothing else can commit a lone
 * branch: a commit decision is only ever written for prepared branches whose
 * registrations are in the log, and a process that lost its lease can no
 * longer write one.) One found committed already (its marker is there) is
 * recorded committed at once: nothing can undo that commit.
 *
 * Resolves with the winning decision, or undefined when the only branch's
 * state cannot be learned now — its participant does not answer, or is not
 * configured in this process at all (deciding abort could contradict a
 * one-phase commit that happened: ask again later, from a process that can
 * reach it).
 */
export async function decideUndecided(
  deps: RecoveryDeps,
  snapshot: TxSnapshot,
  source: DecisionSource = 'recovery',
  reason?: AbortReason,
): Promise<DecisionRecord | undefined> {
  // Whatever this process's own onePhaseCommit setting: the process that ran the transaction may have had it on.
  if (snapshot.branches.length === 1) {
    const branch = snapshot.branches[0];
    const participant = deps.participants.accepts(branch.participant, branch.url) ? deps.participants.forBranch(branch) : undefined;
    if (!participant?.status) {
      // Not configured here (another kind of process ran it, or an operator's config lacks it): its
      // state cannot be learned, and deciding abort could contradict a one-phase commit that happened.
      deps.logger.warn({ txId: snapshot.txId, participant: branch.participant }, 'cannot ask the only branch participant from this process; left undecided');
      return undefined;
    }
    const ref = { ...branch, txId: snapshot.txId };
    try {
      const first = await participant.status(ref);
      // Its marker proves the commit: a rollback now could only meet it (a heuristic hazard for nothing),
      // and one failing otherwise would leave a transaction proven committed undecided.
      if (first === 'committed') return deps.decideCommitted(snapshot.txId, snapshot.branches);
      if (first !== 'prepared') {
        // A heuristic hazard here means it committed (its marker is there): the state below says so.
        await participant.rollback(ref).catch((e: unknown) => {
          if (!isTwopcError(e, 'heuristic-hazard')) throw e;
        });
        const state = await participant.status(ref);
        if (state === 'committed') return deps.decideCommitted(snapshot.txId, snapshot.branches);
      }
    } catch (e) {
      // Deciding abort now could contradict a one-phase commit that happened; ask again on the next pass.
      deps.logger.warn({ txId: snapshot.txId, participant: branch.participant, err: errorMessage(e) }, 'cannot learn the only branch state yet');
      return undefined;
    }
  }
  // No branch (nothing can have committed), or several (only a commit decision commits them).
  return deps.decide(snapshot.txId, snapshot.branches, source, reason);
}
