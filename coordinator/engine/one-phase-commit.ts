import { AbortReason, errorMessage, isTwopcError, TransactionAbortedError, TwopcError } from './ports/protocol';
import type { BranchRef } from './ports/participant';
import { backoffDelay, sleep, waitAtMost } from './ports/backoff';
import type { EngineContext } from './engine-context';
import { abortedError } from './engine-errors';
import { abandon, abortLive, finishWithoutDecision } from './live-endings';
import type { CommitResult, LiveBranch, LiveTransaction } from './live-transaction';

/**
 * One branch that never prepared: the participant's own COMMIT is the
 * decision, and no decision record is written. A lost answer is resolved by
 * asking again (the participant learns the outcome from its marker once the
 * old connection is gone), never by guessing; the caller gets
 * `outcome-unknown` after `commitWaitMs` while the asking goes on.
 */
export function commitOnePhase(ctx: EngineContext, tx: LiveTransaction, branch: LiveBranch): Promise<CommitResult> {
  const ref: BranchRef = { ...branch.info, txId: tx.id };
  // From here no timer or caller may decide abort: the participant's COMMIT may land.
  ctx.deadlines.remove(tx);
  tx.onePhase = true;
  tx.onePhaseOutcome = onePhaseUntilKnown(ctx, tx, ref).then(async (outcome) => {
    if (outcome.kind === 'committed') {
      ctx.crash.hit('after-one-phase-commit');
      branch.state = 'committed';
      await finishWithoutDecision(ctx, tx, 'one-phase');
    } else if (outcome.kind === 'aborted') {
      branch.state = 'failed';
      // The outcome is known once abort is decided: waiting for the branch's rollback too (commitWaitMs,
      // the wait of onePhaseAnswer as well) answered outcome-unknown for a commit that never reached an
      // unreachable participant. Phase 2 retries that rollback in the background.
      await abortLive(ctx, tx, outcome.reason, 'engine', 0).catch((e) => abandon(ctx, tx, e));
    } else if (outcome.kind === 'hazard') {
      // Retrying cannot change what the participant reports: recorded (before the transaction
      // leaves memory, so a status read or a repeated commit finds it), left to an operator.
      branch.state = 'heuristic-hazard';
      await ctx.phaseTwo.recordHazard(tx.id, branch.info, outcome.detail);
      ctx.deadlines.remove(tx);
      ctx.live.delete(tx.id);
      return { kind: 'hazard', detail: outcome.detail };
    } else {
      // Stopping, or the lease was lost: recovery (here at the next start, or the instance that took over) asks the branch.
      abandon(ctx, tx, new Error('engine stopping'));
    }
    return { kind: outcome.kind };
  });
  return onePhaseAnswer(ctx, tx);
}

export async function onePhaseAnswer(ctx: EngineContext, tx: LiveTransaction): Promise<CommitResult> {
  const outcome = await waitAtMost(tx.onePhaseOutcome!, ctx.config.commitWaitMs);
  if (outcome?.kind === 'committed') return { txId: tx.id, state: 'committed', phaseTwoPending: false };
  if (outcome?.kind === 'aborted') throw abortedError(tx);
  if (outcome?.kind === 'hazard') {
    throw new TwopcError('heuristic-hazard', `transaction ${tx.id}: its only participant reports a heuristic hazard on the one-phase commit (${outcome.detail}); an operator must resolve it`, { txId: tx.id });
  }
  throw new TwopcError('outcome-unknown', `transaction ${tx.id}: the one-phase commit's outcome is not known yet; ask again`, { txId: tx.id });
}

async function onePhaseUntilKnown(
  ctx: EngineContext,
  tx: LiveTransaction,
  ref: BranchRef,
): Promise<{ kind: 'committed' } | { kind: 'aborted'; reason: AbortReason } | { kind: 'hazard'; detail: string } | { kind: 'stopped' }> {
  for (let attempt = 0; ; attempt += 1) {
    // Without a valid lease no COMMIT goes out: the instance that takes over may be deciding this
    // transaction (it rolls the branch back first, so a COMMIT sent earlier cannot land after).
    if (tx.handedOver || !ctx.ownership.holdsLease) return { kind: 'stopped' };
    try {
      // After an unknown outcome, `retry`: a retry that does not arrive no longer proves "not committed".
      await ctx.participants.forBranch(ref).commit(ref, { onePhase: true, ...(attempt > 0 ? { retry: true } : {}) });
      return { kind: 'committed' };
    } catch (e) {
      if (isTwopcError(e, 'transaction-aborted')) {
        const cause = e instanceof TransactionAbortedError ? e.reason : undefined;
        return {
          kind: 'aborted',
          reason: { cause: 'vote-no', message: cause?.message ?? errorMessage(e), branchId: ref.branchId, participant: ref.participant, ...(cause?.sqlState ? { sqlState: cause.sqlState } : {}) },
        };
      }
      if (isTwopcError(e, 'heuristic-hazard')) return { kind: 'hazard', detail: errorMessage(e) };
      const delay = backoffDelay(attempt, ctx.config.phaseTwoBaseDelayMs, ctx.config.phaseTwoMaxDelayMs);
      ctx.phaseTwo.retryWarnings.warn(ref.participant, (heldBack) =>
        ctx.logger.warn({ txId: ref.txId, gid: ref.gid, participant: ref.participant, attempt, delay, heldBack, err: errorMessage(e) }, 'one-phase commit outcome unknown; asking again'),
      );
      if (!(await sleep(delay, ctx.stopController.signal))) return { kind: 'stopped' };
    }
  }
}
