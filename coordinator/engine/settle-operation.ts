import { errorMessage, isTwopcError, parseGid, TwopcError } from './ports/protocol';
import type { HazardRecord, TxSnapshot } from './ports/decision-log';
import type { ResolverDeps } from './resolver-deps';
import type { BranchInfo, Outcome } from './ports/types';

/** What `settle` did. */
export interface SettleResult {
  txId: string;
  /** How the transaction ended: its decision, or (undecided) the outcome the operator gave. */
  outcome: Outcome;
  /** Branches without a hazard that acknowledged the outcome now. */
  finished: number;
  /** Branches with a hazard (reconciled by hand); their hazard records stay in its history. */
  hazards: number;
}

/**
 * An operator's settle (`twopc settle`): ends an unfinished transaction with a
 * heuristic hazard once the operator has reconciled the hazard's data by
 * hand. Nothing else ends one: recovery and sweeps leave it, and `retry`
 * finishes it only when the participant can now prove the decision.
 *
 * It refuses whatever it could not finish honestly, leaving the transaction
 * unfinished (what it did by then, finishing branches or recording a hazard
 * it met, is what phase 2 would have done): a hazard branch still prepared (it holds its locks, and phase 2 can still
 * finish it: `retry`) or whose state cannot be learned; a branch without a
 * hazard that does not acknowledge the outcome now (phase 2 must reach every
 * one of those first, or settling would leave it prepared for good: nothing
 * drives a completed transaction again, and a sweep leaves a prepared branch
 * of a committed one alone). An undecided transaction (a one-phase commit its
 * participant could not confirm) takes the outcome the operator found, through
 * the register, so it can never contradict a decision written meanwhile, once
 * its branch is judged by recovery's rule (assertLoneBranchAgrees).
 *
 * The `complete` record is stored (and made durable) before it answers: once
 * it says settled, no restart brings the transaction back. A crash before
 * that leaves it unfinished with its hazard, and settling again finishes it.
 */
export async function settleTransaction(deps: ResolverDeps, txId: string, asked: Outcome | undefined, by: string): Promise<SettleResult> {
  const snapshot = await deps.log.get(txId);
  if (!snapshot) throw new TwopcError('not-found', `no transaction ${txId} in the log`, { txId });
  const recorded = snapshot.outcome;
  if (snapshot.completed) {
    throw new TwopcError('state-conflict', `transaction ${txId} is already completed${recorded ? ` (${recorded})` : ''}; nothing to settle`, { txId, state: 'completed' });
  }
  if (snapshot.hazards.length === 0) {
    throw new TwopcError('state-conflict', `transaction ${txId} has no heuristic hazard: settle is for one an operator reconciled by hand; use twopc retry (decided) or twopc resolve`, { txId });
  }
  if (deps.isLive(txId) || deps.phaseTwo.isDriving(txId)) {
    throw new TwopcError('state-conflict', `transaction ${txId} is running or in phase 2 in this coordinator; settle it once that ended (twopc phase-two shows its attempts)`, { txId, state: 'active' });
  }
  if (!deps.mayRecover(snapshot)) {
    throw new TwopcError('owner-unavailable', `transaction ${txId} is owned by another live coordinator instance: settle it through that instance (or any instance of the cluster, with --url), or once its lease expired`, { txId });
  }
  if (recorded && asked && asked !== recorded) {
    throw new TwopcError('state-conflict', `transaction ${txId} is decided ${recorded}; it cannot be settled as ${asked}`, { txId, decision: recorded });
  }
  const outcome = recorded ?? asked;
  if (!outcome) {
    throw new TwopcError('invalid-input', `transaction ${txId} has no decision: outcome must say how its branches ended (commit or abort), as you found or made them`, { field: 'outcome' });
  }
  const hazardous = hazardBranches(snapshot);
  const pending = (snapshot.decision?.branches ?? snapshot.branches).filter((b) => !hazardous.some((h) => h.gid === b.gid));
  if (!snapshot.decision && pending.length > 0) {
    // Not what a one-phase commit leaves (its only branch has the hazard): a branch nobody decided for.
    throw new TwopcError('state-conflict', `transaction ${txId} has no decision and branches without a hazard (${pending.map((b) => b.gid).join(', ')}): resolve it first`, { txId });
  }
  const finish = snapshot.decision ? `twopc retry ${txId}` : `twopc resolve ${txId}`;
  for (const branch of hazardous) await assertNotPrepared(deps, txId, branch, finish);
  // Before anything is decided: a refusal here leaves the transaction as it was.
  const strays = await strayBranches(deps, txId, [...pending, ...hazardous]);
  if (outcome === 'commit' && strays.length > 0) {
    // Prepared, yet in no commit decision: not something 2PC produces, and never committed on a guess.
    // Completed, it would leave every listing while holding its locks for good.
    throw new TwopcError('state-conflict', `branch ${strays[0].gid} on ${strays[0].participant} of transaction ${txId} is prepared but not in its commit decision: end it by hand (twopc orphans shows it), then settle again`, { txId, gid: strays[0].gid });
  }
  if (!snapshot.decision) {
    for (const branch of hazardous) await assertLoneBranchAgrees(deps, txId, branch, outcome);
    const won = await deps.log.decide({ txId, at: Date.now(), outcome, source: 'admin', branches: snapshot.branches });
    if (won.outcome !== outcome) {
      throw new TwopcError('state-conflict', `transaction ${txId} was decided ${won.outcome} meanwhile; it cannot be settled as ${outcome}`, { txId, decision: won.outcome });
    }
  }
  // Under an abort every branch is rolled back, listed or not (as a sweep's stray rollback does).
  await finishOthers(deps, txId, outcome, [...pending, ...strays]);
  // A drive started meanwhile (a sweep, a client's retried commit) could record a hazard after the completion.
  if (deps.phaseTwo.isDriving(txId)) {
    throw new TwopcError('state-conflict', `phase 2 of transaction ${txId} started in this coordinator meanwhile; settle it again once it ended`, { txId });
  }
  // `by` marks this completion as a settle's: the audit trail labels it so, and nothing else.
  await deps.log.append({ type: 'complete', txId, at: Date.now(), outcome, by });
  await deps.log.makeDurable?.();
  deps.phaseTwo.forgetAcknowledged(txId);
  deps.logger.info({ txId, outcome, hazards: hazardous.length }, 'transaction with a heuristic hazard settled by an operator');
  return { txId, outcome, finished: pending.length + strays.length, hazards: hazardous.length };
}

/** Each branch with a hazard once (a retried phase 2 may record one twice), with its registration's url. */
function hazardBranches(snapshot: TxSnapshot): BranchInfo[] {
  const out: BranchInfo[] = [];
  for (const h of snapshot.hazards) {
    if (out.some((b) => b.gid === h.gid)) continue;
    out.push(snapshot.branches.find((b) => b.gid === h.gid) ?? snapshot.decision?.branches.find((b) => b.gid === h.gid) ?? fromHazard(h));
  }
  return out;
}

function fromHazard(h: HazardRecord): BranchInfo {
  return { branchId: h.branchId, gid: h.gid, participant: h.participant };
}

/**
 * A hazard branch still prepared holds its locks, and phase 2 can still end
 * it as decided: settling would leave it prepared for good. Read without side
 * effects where the participant can (`recordedState`; `status` otherwise).
 */
async function assertNotPrepared(deps: ResolverDeps, txId: string, branch: BranchInfo, finish: string): Promise<void> {
  const participant = deps.participants.accepts(branch.participant, branch.url) ? deps.participants.forBranch(branch) : undefined;
  const read = participant?.recordedState?.bind(participant) ?? participant?.status?.bind(participant);
  if (!read) {
    throw new TwopcError('participant-unavailable', `cannot learn from this process whether hazard branch ${branch.gid} on ${branch.participant} is still prepared; refusing to settle`, { txId, gid: branch.gid });
  }
  let state;
  try {
    state = await read({ ...branch, txId });
  } catch (e) {
    throw new TwopcError('participant-unavailable', `cannot learn whether hazard branch ${branch.gid} on ${branch.participant} is still prepared (${errorMessage(e)}); refusing to settle`, { txId, gid: branch.gid });
  }
  if (state === 'prepared') {
    throw new TwopcError('state-conflict', `hazard branch ${branch.gid} on ${branch.participant} is still prepared (holding its locks): phase 2 can still finish it: ${finish}`, { txId, gid: branch.gid, state });
  }
}

/**
 * Prepared branches of the transaction on the participants that can list
 * theirs (the coordinator's own databases; services prepare only what they
 * registered) that its log does not list. Listed here, not through
 * scanOrphans: that one skips a transaction being driven, which must not hide
 * a stray from a settle. One that cannot be listed refuses the settle: a stray
 * there would be left prepared for good.
 */
async function strayBranches(deps: ResolverDeps, txId: string, known: readonly BranchInfo[]): Promise<BranchInfo[]> {
  const strays: BranchInfo[] = [];
  for (const participant of deps.participants.all()) {
    if (!participant.listPrepared) continue;
    let prepared;
    try {
      prepared = await participant.listPrepared(deps.config.gidPrefix);
    } catch (e) {
      throw new TwopcError('participant-unavailable', `cannot list the prepared branches of ${participant.name} (${errorMessage(e)}); refusing to settle ${txId} while a branch of it there could be left prepared`, { txId, participant: participant.name });
    }
    for (const { gid } of prepared) {
      const parsed = parseGid(gid);
      if (parsed?.txId === txId && !known.some((b) => b.gid === gid)) strays.push({ branchId: parsed.branchId, gid, participant: participant.name });
    }
  }
  return strays;
}

/**
 * An undecided transaction's branch (a one-phase commit its participant could
 * not confirm) against the outcome an operator gives, by recovery's rule
 * (decideUndecided): one its participant proves committed can only be settled
 * as committed; any other is rolled back first (ending a holder whose
 * one-phase COMMIT may still be on its way, so none can land after an abort
 * is recorded), then read again. An outcome the participant cannot prove
 * either way (its proof is gone: the operator checked by hand) is the
 * operator's word. A participant that cannot be asked refuses the settle.
 */
async function assertLoneBranchAgrees(deps: ResolverDeps, txId: string, branch: BranchInfo, outcome: Outcome): Promise<void> {
  const participant = deps.participants.accepts(branch.participant, branch.url) ? deps.participants.forBranch(branch) : undefined;
  if (!participant?.status) {
    throw new TwopcError('participant-unavailable', `cannot ask ${branch.participant} from this process whether branch ${branch.gid} committed; refusing to settle`, { txId, gid: branch.gid });
  }
  const ref = { ...branch, txId };
  let state;
  try {
    state = await participant.status(ref);
    if (state !== 'committed' && state !== 'prepared') {
      // A heuristic hazard here means it committed (its proof is there): the state read next says so.
      await participant.rollback(ref).catch((e: unknown) => {
        if (!isTwopcError(e, 'heuristic-hazard')) throw e;
      });
      state = await participant.status(ref);
    }
  } catch (e) {
    throw new TwopcError('participant-unavailable', `cannot learn whether branch ${branch.gid} on ${branch.participant} committed (${errorMessage(e)}); refusing to settle`, { txId, gid: branch.gid });
  }
  if (state === 'prepared') {
    throw new TwopcError('state-conflict', `branch ${branch.gid} on ${branch.participant} is prepared: twopc resolve ${txId} decides it`, { txId, gid: branch.gid, state });
  }
  if (state === 'committed' && outcome !== 'commit') {
    throw new TwopcError('state-conflict', `branch ${branch.gid} on ${branch.participant} proves it committed: transaction ${txId} can only be settled as commit`, { txId, gid: branch.gid, state });
  }
}

/**
 * Phase 2 of every branch without a hazard, one attempt each (idempotent:
 * one already finished acknowledges again). Any that does not acknowledge
 * refuses the settle, which is left to be asked again.
 */
async function finishOthers(deps: ResolverDeps, txId: string, outcome: Outcome, branches: BranchInfo[]): Promise<void> {
  const failures = await Promise.all(
    branches.map(async (branch) => {
      try {
        const participant = deps.participants.forBranch(branch);
        if (outcome === 'commit') await participant.commit({ ...branch, txId });
        else await participant.rollback({ ...branch, txId });
        return undefined;
      } catch (e) {
        return { branch, e };
      }
    }),
  );
  const hazard = failures.find((f) => f && isTwopcError(f.e, 'heuristic-hazard'));
  if (hazard) {
    await deps.phaseTwo.recordHazard(txId, hazard.branch, errorMessage(hazard.e));
    throw new TwopcError('state-conflict', `branch ${hazard.branch.gid} on ${hazard.branch.participant} has a heuristic hazard too (${errorMessage(hazard.e)}): reconcile it as well, then settle again`, { txId, gid: hazard.branch.gid });
  }
  const failed = failures.find((f) => f !== undefined);
  if (failed) {
    throw new TwopcError('participant-unavailable', `branch ${failed.branch.gid} on ${failed.branch.participant} did not acknowledge ${outcome} (${errorMessage(failed.e)}); every branch without a hazard must be finished before settling: try again when it is reachable`, { txId, gid: failed.branch.gid });
  }
}
