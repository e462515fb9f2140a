import { errorMessage, parseGid, TwopcError } from './ports/protocol';
import type { DecisionRecord, TxSnapshot } from './ports/decision-log';
import { decideUndecided } from './recovery';
import { unknownTransaction } from './sweeper';
import { waitAtMost } from './ports/backoff';
import type { PhaseTwoResult } from './phase-two';
import type { ResolverDeps } from './resolver-deps';
import type { BranchInfo, Outcome } from './ports/types';

/** A prepared branch of ours that no transaction running here owns. */
export interface Orphan {
  participant: string;
  gid: string;
  txId: string;
  branchId: number;
  preparedAt: string;
  /** What the log says of its transaction: the decision, or null (undecided or unknown). */
  decision: Outcome | null;
  /** The transaction is in the log (false: its registration was lost or compacted). */
  known: boolean;
}

export interface OrphanScan {
  orphans: Orphan[];
  /** Participants that could not be listed. */
  unreachable: Array<{ participant: string; error: string }>;
}

export interface ResolveResult {
  txId: string;
  decision: Outcome;
  /** False when this call recorded the decision; true when it was already recorded (the same outcome). */
  alreadyDecided: boolean;
  completed: boolean;
  hazards: number;
}

/**
 * Every prepared branch of our prefix on the directly reachable participants
 * that no transaction running in this process owns: after a crash, those the
 * sweep has not reached yet; in steady state, none.
 */
export async function scanOrphans(deps: ResolverDeps): Promise<OrphanScan> {
  const scan: OrphanScan = { orphans: [], unreachable: [] };
  await Promise.all(
    deps.participants.all().map(async (participant) => {
      if (!participant.listPrepared) return;
      let prepared;
      try {
        prepared = await participant.listPrepared(deps.config.gidPrefix);
      } catch (e) {
        scan.unreachable.push({ participant: participant.name, error: errorMessage(e) });
        return;
      }
      for (const { gid, preparedAt } of prepared) {
        const parsed = parseGid(gid);
        if (!parsed || deps.isLive(parsed.txId) || deps.phaseTwo.isDriving(parsed.txId)) continue;
        const snapshot = await deps.log.get(parsed.txId);
        // Several instances: a branch of a transaction another live instance runs is that instance's, not an
        // orphan, also when the log has no record of it (its id names the owner).
        if (!deps.mayRecover(snapshot ?? unknownTransaction(parsed.txId, deps))) continue;
        scan.orphans.push({
          participant: participant.name,
          gid,
          txId: parsed.txId,
          branchId: parsed.branchId,
          preparedAt: new Date(preparedAt).toISOString(),
          decision: snapshot?.outcome ?? null,
          known: snapshot !== undefined,
        });
      }
    }),
  );
  scan.orphans.sort((x, y) => x.preparedAt.localeCompare(y.preparedAt) || x.gid.localeCompare(y.gid));
  return scan;
}

/**
 * An operator's decision (`twopc resolve`). It goes through the same register
 * as every other decision, so it can never contradict one already recorded:
 * asking for the outcome that was recorded finishes it; asking for the other
 * one fails with `state-conflict`. Branches are the log's, plus any prepared
 * branch of the transaction found on a reachable participant.
 *
 * An undecided transaction is judged by recovery's rule (`decideUndecided`),
 * not by the operator's word alone: a one-phase commit leaves no decision
 * record, so an abort is recorded only once the only branch is known not to
 * have committed (`participant-unavailable` when that cannot be learned now;
 * `state-conflict` when it committed). A transaction another live instance
 * owns is refused (`owner-unavailable`): only its owner may end it (an admin
 * call reaching another instance is relayed to the owner before it gets here).
 */
export async function resolveTransaction(deps: ResolverDeps, txId: string, outcome: Outcome, waitMs: number): Promise<ResolveResult> {
  const snapshot = await deps.log.get(txId);
  const recorded = snapshot?.decision;
  const known = snapshot?.outcome ?? recorded?.outcome;
  // The register already answers a contradicting request, whoever owns the transaction and whether it runs here.
  if (known !== undefined && known !== outcome) {
    throw new TwopcError('state-conflict', `transaction ${txId} is already decided ${known}; an operator cannot record ${outcome} against it`, { txId, decision: known });
  }
  // Undecided and running here: its decision is its own to make. Decided (phase 2 still retrying, e.g. a
  // participant that voted yes went away), the recorded outcome is applied now below, joining its drive.
  if (deps.isLive(txId) && !recorded) {
    throw new TwopcError('state-conflict', `transaction ${txId} is running in this coordinator; commit or abort it instead`, { txId, state: 'active' });
  }
  if (snapshot?.completed) {
    if (known === undefined) throw new TwopcError('state-conflict', `transaction ${txId} is completed and its outcome is not recorded; nothing to resolve`, { txId });
    return { txId, decision: known, alreadyDecided: true, completed: true, hazards: 0 };
  }
  const branches: BranchInfo[] = [...(snapshot?.branches ?? [])];
  const scan = await scanOrphans(deps);
  for (const orphan of scan.orphans) {
    if (orphan.txId === txId && !branches.some((b) => b.gid === orphan.gid)) {
      branches.push({ branchId: orphan.branchId, gid: orphan.gid, participant: orphan.participant });
    }
  }
  if (!snapshot && branches.length === 0) throw new TwopcError('not-found', `no transaction ${txId} in the log and no prepared branch of it on any reachable participant`, { txId });
  const basis: TxSnapshot = { ...(snapshot ?? unknownTransaction(txId, deps)), branches };
  if (!deps.mayRecover(basis)) {
    throw new TwopcError(
      'owner-unavailable',
      `transaction ${txId} is owned by another live coordinator instance: resolve it through that instance (or any instance of the cluster, with --url), or once its lease expired`,
      { txId },
    );
  }
  let won: DecisionRecord;
  if (recorded) won = recorded;
  else if (outcome === 'commit') {
    won = await deps.log.decide({ txId, at: Date.now(), outcome, source: 'admin', branches: await assertAllPrepared(deps, txId, branches) });
  } else {
    const decided = await decideUndecided(deps, basis, 'admin', { cause: 'admin', message: 'resolved by an operator' });
    if (!decided) {
      throw new TwopcError(
        'participant-unavailable',
        `transaction ${txId}: its only branch may have committed in one phase and its participant cannot be asked now; refusing to record abort (try again when it is reachable)`,
        { txId, gid: branches[0]?.gid },
      );
    }
    won = decided;
  }
  if (won.outcome !== outcome) {
    const why = won.source === 'admin' ? '' : won.outcome === 'commit' && !recorded ? ' (its only branch committed in one phase)' : '';
    throw new TwopcError('state-conflict', `transaction ${txId} is already decided ${won.outcome}${why}; an operator cannot record ${outcome} against it`, { txId, decision: won.outcome });
  }
  const missing = branches.filter((b) => !won.branches.some((w) => w.gid === b.gid));
  // A prepared branch the decision does not list: an abort covers it; under a commit it was never voted in.
  const drive = won.outcome === 'abort' && missing.length > 0 ? { ...won, branches: [...won.branches, ...missing] } : won;
  const ours = recorded === undefined && won.source === 'admin';
  const running = deps.phaseTwo.drive(drive);
  // An operator resolving a decided transaction wants it applied now: a drive waiting out its backoff
  // (a branch that went away and came back) retries at once, as `retry` does. The decision is unchanged.
  deps.phaseTwo.retryNow(txId);
  const result = await waitAtMost(running, waitMs);
  return { txId, decision: won.outcome, alreadyDecided: !ours, completed: result?.completed ?? false, hazards: result?.hazards ?? 0 };
}

/**
 * An operator's commit of an undecided transaction is only safe when every
 * branch voted yes, i.e. is prepared (or already committed): committing the
 * prepared ones of a transaction with a branch that never prepared would be a
 * partial commit. Anything short of that, or a branch whose state cannot be
 * asked, refuses the commit.
 *
 * The states are read without side effects (`recordedState`): `status` ends
 * a branch another process still holds, so a commit refused at a later branch
 * would have rolled an earlier one back. Read that way, a branch held
 * elsewhere reads `unknown` or `active`, which refuses the commit too: the
 * check can only err towards refusing. A participant adapter without
 * `recordedState` is asked `status` (with its side effect).
 *
 * Returns the branches for the decision, each prepared one with the xid its
 * participant proves commits with (`preparedXid`), as a live commit's votes
 * carry it: without it, a COMMIT PREPARED whose answer is lost and that is
 * retried by another process finds nothing and no marker, a heuristic hazard
 * on a branch that committed.
 */
async function assertAllPrepared(deps: ResolverDeps, txId: string, branches: BranchInfo[]): Promise<BranchInfo[]> {
  if (branches.length === 0) throw new TwopcError('state-conflict', `transaction ${txId} has no branch to commit`, { txId });
  const proven: BranchInfo[] = [];
  for (const branch of branches) {
    const participant = deps.participants.accepts(branch.participant, branch.url) ? deps.participants.forBranch(branch) : undefined;
    const read = participant?.recordedState?.bind(participant) ?? participant?.status?.bind(participant);
    if (!read) {
      throw new TwopcError('participant-unavailable', `cannot verify branch ${branch.gid} on ${branch.participant} is prepared; refusing to commit`, { txId, gid: branch.gid });
    }
    let state;
    let xid = branch.xid;
    try {
      state = await read({ ...branch, txId });
      if (state === 'prepared' && xid === undefined) xid = await participant?.preparedXid?.({ ...branch, txId });
    } catch (e) {
      throw new TwopcError('participant-unavailable', `cannot verify branch ${branch.gid} on ${branch.participant} is prepared (${errorMessage(e)}); refusing to commit`, { txId, gid: branch.gid });
    }
    if (state !== 'prepared' && state !== 'committed') {
      throw new TwopcError('state-conflict', `branch ${branch.gid} on ${branch.participant} is ${state}, not prepared: committing would be partial; resolve --abort instead`, { txId, gid: branch.gid, state });
    }
    proven.push(xid === undefined ? branch : { ...branch, xid });
  }
  return proven;
}

export interface OrphanRollback {
  gid: string;
  txId: string;
  participant: string;
  /** What happened: rolled back; committed (its transaction was decided commit); left (running, or a hazard). */
  outcome: 'rolled-back' | 'committed' | 'left';
  detail?: string;
}

/**
 * `twopc orphans --rollback`: ends every orphan through the register. An
 * undecided one is decided abort and rolled back; one whose transaction was
 * decided commit is committed (rolling it back would contradict the decision).
 */
export async function rollbackOrphans(deps: ResolverDeps, waitMs: number): Promise<OrphanRollback[]> {
  const { orphans } = await scanOrphans(deps);
  const byTx = new Map<string, Orphan[]>();
  for (const o of orphans) byTx.set(o.txId, [...(byTx.get(o.txId) ?? []), o]);
  const results: OrphanRollback[] = [];
  await Promise.all(
    [...byTx].map(async ([txId, txOrphans]) => {
      const snapshot = await deps.log.get(txId);
      if (snapshot?.completed) {
        // Never driven again (see Sweeper): an aborted transaction's prepared branch, listed by its decision
        // or not, is covered by the abort and rolled back alone; anything else is left.
        for (const o of txOrphans) {
          const found = snapshot.branches.find((b) => b.gid === o.gid) ?? { branchId: o.branchId, gid: o.gid, participant: o.participant };
          const done = snapshot.outcome === 'abort' && (await deps.phaseTwo.rollbackStray(txId, found));
          results.push(done ? { gid: o.gid, txId, participant: o.participant, outcome: 'rolled-back' } : { gid: o.gid, txId, participant: o.participant, outcome: 'left', detail: 'its transaction is completed; left for an operator' });
        }
        return;
      }
      const found: BranchInfo[] = txOrphans.map((o) => ({ branchId: o.branchId, gid: o.gid, participant: o.participant }));
      const branches = [...(snapshot?.branches ?? [])];
      for (const b of found) if (!branches.some((x) => x.gid === b.gid)) branches.push(b);
      const basis: TxSnapshot = snapshot ?? unknownTransaction(txId, deps);
      // Recovery's rule for an undecided transaction (see decideUndecided: a prepared branch is rolled back only once abort won).
      const decision = snapshot?.decision ?? (await decideUndecided(deps, { ...basis, branches }, 'admin'));
      if (!decision) {
        for (const o of txOrphans) results.push({ gid: o.gid, txId, participant: o.participant, outcome: 'left', detail: 'its only branch could not be asked whether it committed in one phase; try again' });
        return;
      }
      const listed = decision.outcome === 'abort' ? { ...decision, branches: withAll(decision.branches, found) } : decision;
      const result: PhaseTwoResult | undefined = await waitAtMost(deps.phaseTwo.drive(listed), waitMs);
      for (const o of txOrphans) {
        const covered = listed.branches.some((b) => b.gid === o.gid);
        results.push({
          gid: o.gid,
          txId,
          participant: o.participant,
          outcome: !covered || !result?.completed ? 'left' : decision.outcome === 'commit' ? 'committed' : 'rolled-back',
          ...(!covered ? { detail: 'prepared, but not in its transaction\'s commit decision: left for an operator' } : !result?.completed ? { detail: 'phase 2 not acknowledged yet (retrying) or a heuristic hazard' } : {}),
        });
      }
    }),
  );
  return results.sort((x, y) => x.gid.localeCompare(y.gid));
}

function withAll(branches: BranchInfo[], more: BranchInfo[]): BranchInfo[] {
  const out = [...branches];
  for (const b of more) if (!out.some((x) => x.gid === b.gid)) out.push(b);
  return out;
}
