import { AbortReason, errorMessage, TwopcError } from './ports/protocol';
import type { DecisionRecord } from './ports/decision-log';
import { waitAtMost } from './ports/backoff';
import { decideAbort, type EngineContext } from './engine-context';
import { onlyBranchUnknown, snapshotOrThrow } from './engine-errors';
import { branchList, CommitResult, LiveTransaction, logBegin } from './live-transaction';
import { decideUndecided } from './recovery';
import type { DecisionSource } from './ports/types';

/** Aborts a transaction that has no commit decision. Idempotent; `state-conflict` if it committed. */
export async function abortTransaction(ctx: EngineContext, txId: string, reason: Partial<AbortReason> = {}): Promise<{ txId: string; state: 'aborted' }> {
  const full = applicationAbort(reason);
  const tx = ctx.live.get(txId);
  if (tx) {
    // Committed without a decision record (read-only, no branch, or one phase), its `complete` still on its way.
    if (tx.state === 'completed') throw new TwopcError('state-conflict', `transaction ${txId} is committed; it cannot be aborted`, { txId, state: 'committed' });
    if (tx.onePhase) throw new TwopcError('state-conflict', `transaction ${txId} is committing (one phase); it cannot be aborted`, { txId, state: tx.state });
    await abortLive(ctx, tx, full, 'engine');
    return { txId, state: 'aborted' };
  }
  const snapshot = await snapshotOrThrow(ctx, txId);
  if (snapshot.outcome === 'commit') {
    throw new TwopcError('state-conflict', `transaction ${txId} is committed; it cannot be aborted`, { txId, state: 'committed' });
  }
  if (snapshot.completed) {
    if (snapshot.outcome === 'abort') return { txId, state: 'aborted' };
    throw new TwopcError('state-conflict', `transaction ${txId} is completed and its outcome is no longer recorded; it cannot be aborted`, { txId, state: 'completed' });
  }
  const decision = snapshot.decision ?? (await decideUndecided(ctx.resolver, snapshot, 'engine', full));
  if (!decision) throw onlyBranchUnknown(txId);
  if (decision.outcome === 'commit') throw new TwopcError('state-conflict', `transaction ${txId} is committed; it cannot be aborted`, { txId, state: 'committed' });
  if (!snapshot.completed) await waitAtMost(ctx.phaseTwo.drive(decision), ctx.config.commitWaitMs);
  return { txId, state: 'aborted' };
}

/** The reason an abort call records: cause `application` unless it says otherwise. */
export function applicationAbort(reason: Partial<AbortReason>): AbortReason {
  return { cause: reason.cause ?? 'application', message: reason.message ?? 'aborted by the application', ...reason };
}

/** No branch is left to finish (one-phase commit, all read-only, no branch): nothing to decide. */
export async function finishWithoutDecision(ctx: EngineContext, tx: LiveTransaction, kind: 'read-only' | 'one-phase'): Promise<CommitResult> {
  ctx.deadlines.remove(tx);
  tx.state = 'completed';
  // Not waited for: nothing is left to finish, and a lost `complete` is repaired by recovery.
  // Its `outcome` is the proof that this transaction, which has no decision record, committed.
  // Until it is stored the log shows the transaction undecided and unfinished: it stays in memory
  // (completed) so that no recovery pass, sweep or abort judges it by recovery's rule meanwhile
  // (which decides abort for one with no branch, or only read-only ones).
  logBegin(ctx, tx);
  ctx.log
    .append({ type: 'complete', txId: tx.id, at: Date.now(), outcome: 'commit' })
    .catch((e) => ctx.logger.warn({ txId: tx.id, err: errorMessage(e) }, 'could not log completion'))
    .finally(() => ctx.live.delete(tx.id));
  ctx.observer.transactionEnded?.(kind, Date.now() - tx.createdAt);
  return { txId: tx.id, state: 'committed', phaseTwoPending: false };
}

/**
 * Decides abort through the register and rolls every branch back. Throws
 * `state-conflict` if commit won. One abort per transaction: `aborting` is
 * set before anything is awaited, which is what keeps a racing commit out.
 */
export function abortLive(ctx: EngineContext, tx: LiveTransaction, reason: AbortReason, source: DecisionSource, rollbackWaitMs = ctx.config.commitWaitMs): Promise<void> {
  tx.aborting ??= runAbort(ctx, tx, reason, source, rollbackWaitMs);
  return tx.aborting;
}

async function runAbort(ctx: EngineContext, tx: LiveTransaction, reason: AbortReason, source: DecisionSource, rollbackWaitMs: number): Promise<void> {
  let decision: DecisionRecord;
  try {
    // A transaction with no record yet gets its begin first: the abort and its `complete` follow it.
    logBegin(ctx, tx);
    // A carried transaction exists nowhere but in its records, and a carried commit for an id the log
    // does not hold records it anew: it is decided only once its records are durable, so no crash can
    // lose a transaction someone was told aborted for a later commit to record and run. After a crash
    // recovery finds it, undecided if this decision was lost, and ends it by its rule: nothing of it
    // was prepared or committed in one phase (`aborting` keeps both out from now on), so never a commit.
    if (tx.carried) await tx.registering;
    decision = await decideAbort(ctx.log, tx.id, branchList(tx), source, reason);
  } catch (e) {
    abandon(ctx, tx, e);
    throw e;
  }
  if (decision.outcome === 'commit') {
    throw new TwopcError('state-conflict', `transaction ${tx.id} is committed; it cannot be aborted`, { txId: tx.id, state: 'committed' });
  }
  await applyAbort(ctx, tx, decision, rollbackWaitMs);
}

/** Hands a transaction whose decision could not be written or confirmed to recovery and sweeps. */
export function abandon(ctx: EngineContext, tx: LiveTransaction, error: unknown): void {
  ctx.deadlines.remove(tx);
  ctx.live.delete(tx.id);
  ctx.logger.error({ txId: tx.id, err: errorMessage(error) }, 'decision not confirmed; recovery and sweeps will finish the transaction');
}

export async function applyAbort(ctx: EngineContext, tx: LiveTransaction, decision: DecisionRecord, rollbackWaitMs = ctx.config.commitWaitMs): Promise<void> {
  ctx.deadlines.remove(tx);
  tx.decision = decision;
  tx.abortReason ??= decision.reason ?? { cause: 'aborted', message: 'transaction aborted' };
  tx.state = 'aborted';
  ctx.crash.hit('after-abort-decision');
  const before = new Map<number, Promise<unknown>>();
  for (const b of tx.branches) if (b.preparing) before.set(b.info.branchId, b.preparing);
  // The winning abort may have been decided elsewhere (a timeout, a sweep, another instance) before
  // every registration here reached it: roll back every branch this process knows as well.
  const missing = branchList(tx).filter((b) => !decision.branches.some((d) => d.gid === b.gid));
  const toRollBack = missing.length === 0 ? decision : { ...decision, branches: [...decision.branches, ...missing] };
  const rolledBack = ctx.phaseTwo.drive(toRollBack, before).then((result) => {
    if (result.completed) ctx.observer.transactionEnded?.('abort', Date.now() - tx.createdAt);
    ctx.live.delete(tx.id);
  });
  // The abort is settled once decided (presumed abort); a participant that stays down must not
  // hold the caller (an HTTP request) forever: phase 2 keeps retrying its rollback in the background.
  if (rollbackWaitMs > 0) await waitAtMost(rolledBack, rollbackWaitMs);
}

/** The transaction's timer: before the decision, a timeout allows abort. */
export async function expire(ctx: EngineContext, tx: LiveTransaction): Promise<void> {
  try {
    if (tx.state === 'active') {
      await abortLive(ctx, tx, { cause: 'timeout', message: `transaction timed out after ${tx.expiresAt - tx.createdAt} ms` }, 'timeout');
    }
    // In 'preparing' the commit itself sees the expiry (prepareAll's wait ends) and aborts.
  } catch (e) {
    ctx.logger.warn({ txId: tx.id, err: errorMessage(e) }, 'timeout abort failed; sweeps and recovery will finish it');
  }
}
