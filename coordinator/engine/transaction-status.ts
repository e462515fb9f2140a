import type { AbortReason } from './ports/protocol';
import type { TxSnapshot } from './ports/decision-log';
import type { LiveTransaction } from './live-transaction';
import type { BranchState, Outcome, TxState } from './ports/types';

export interface BranchStatus {
  branchId: number;
  gid: string;
  participant: string;
  url: string | null;
  state: BranchState;
}

/** A transaction as the API and the CLI show it. */
export interface TransactionStatus {
  id: string;
  state: TxState;
  decision: Outcome | null;
  createdAt: string;
  expiresAt: string;
  branches: BranchStatus[];
  reason: AbortReason | null;
  hazards: Array<{ branchId: number; gid: string; participant: string; detail: string; at: string }>;
  metadata: Record<string, unknown> | null;
}

/** A branch that acknowledged the decision in phase 2 (`acked`: what the phase-2 driver saw) shows its outcome, not its vote. */
function phaseTwoState(outcome: Outcome | undefined, branchId: number, acked: ReadonlySet<number> | undefined): BranchState | undefined {
  if (!outcome || !acked?.has(branchId)) return undefined;
  return outcome === 'commit' ? 'committed' : 'rolled-back';
}

/** `acked`: the branches phase 2 finished so far (PhaseTwoDriver.acknowledged). */
export function statusFromLive(tx: LiveTransaction, acked?: ReadonlySet<number>): TransactionStatus {
  const outcome = tx.decision?.outcome;
  return {
    id: tx.id,
    state: tx.state,
    // Completed here means committed (an abort ends as aborted), also without a decision record.
    decision: tx.decision?.outcome ?? (tx.state === 'completed' ? 'commit' : null),
    createdAt: new Date(tx.createdAt).toISOString(),
    expiresAt: new Date(tx.expiresAt).toISOString(),
    branches: [...tx.branches.values()].map((b) => ({ ...b.info, url: b.info.url ?? null, state: phaseTwoState(outcome, b.info.branchId, acked) ?? b.state })),
    reason: tx.state === 'aborted' ? tx.abortReason ?? null : null,
    hazards: [],
    metadata: tx.metadata ?? null,
  };
}

/** `acked` as in statusFromLive: the log has no record of each branch's acknowledgement, only of the decision and completion. */
export function statusFromSnapshot(s: TxSnapshot, acked?: ReadonlySet<number>): TransactionStatus {
  // The decision, or for a completed transaction without one what its outcome record proves.
  const outcome = s.outcome ?? null;
  const hazardous = new Set(s.hazards.map((h) => h.branchId));
  const decided = new Set((s.decision?.branches ?? []).map((b) => b.branchId));
  const branchState = (branchId: number): BranchState => {
    if (hazardous.has(branchId)) return 'heuristic-hazard';
    const finished = phaseTwoState(outcome ?? undefined, branchId, acked);
    if (finished) return finished;
    if (outcome === 'commit') {
      // Left out of a commit decision = voted read-only (without a decision record: committed in one phase).
      if (s.decision && !decided.has(branchId)) return 'read-only';
      return s.completed ? 'committed' : 'prepared';
    }
    if (outcome === 'abort') return s.completed ? 'rolled-back' : 'active';
    return 'active';
  };
  let state: TxState;
  if (s.completed) state = 'completed';
  else if (outcome === 'commit') state = 'committed';
  else if (outcome === 'abort') state = 'aborted';
  else state = 'active';
  return {
    id: s.txId,
    state,
    decision: outcome,
    createdAt: new Date(s.createdAt).toISOString(),
    expiresAt: new Date(s.expiresAt).toISOString(),
    branches: s.branches.map((b) => ({ ...b, url: b.url ?? null, state: branchState(b.branchId) })),
    reason: s.decision?.reason ?? null,
    hazards: s.hazards.map((h) => ({ branchId: h.branchId, gid: h.gid, participant: h.participant, detail: h.detail, at: new Date(h.at).toISOString() })),
    metadata: s.metadata ?? null,
  };
}

/** Branches with a hazard on record: each phase 2 that meets the same branch again records it again. */
export function hazardBranchCount(hazards: ReadonlyArray<{ gid: string }>): number {
  return new Set(hazards.map((h) => h.gid)).size;
}
