import type { BranchInfo } from './ports/types';

/** One branch of a transaction whose phase 2 was not acknowledged at least once, as this process saw it. */
export interface BranchRetries {
  branchId: number;
  gid: string;
  participant: string;
  /** Attempts not acknowledged so far. */
  failedAttempts: number;
  /** What the last one failed with. */
  lastError: string;
  lastAttemptAt: string;
  /** When the next attempt is due (an operator's retry brings it forward); absent once acknowledged. */
  nextAttemptAt?: string;
  /** Set once it was acknowledged (its transaction's other branches may still be retried). */
  acknowledgedAt?: string;
}

/**
 * The phase-2 attempts that failed, per transaction being driven here: what
 * an operator looking at a stuck transaction wants to know (which branch, how
 * often, why, when next). In memory only and only while the drive runs: the
 * log records the decision, hazards and completion, not every attempt (a
 * participant down for an hour would write thousands of records).
 */
export class PhaseTwoProgress {
  private readonly byTx = new Map<string, Map<number, BranchRetries>>();

  failed(txId: string, branch: BranchInfo, error: string, now: number, nextInMs: number): void {
    let branches = this.byTx.get(txId);
    if (!branches) {
      branches = new Map();
      this.byTx.set(txId, branches);
    }
    const seen = branches.get(branch.branchId);
    branches.set(branch.branchId, {
      branchId: branch.branchId,
      gid: branch.gid,
      participant: branch.participant,
      failedAttempts: (seen?.failedAttempts ?? 0) + 1,
      lastError: error.slice(0, 500),
      lastAttemptAt: new Date(now).toISOString(),
      nextAttemptAt: new Date(now + nextInMs).toISOString(),
    });
  }

  acknowledged(txId: string, branchId: number, now: number): void {
    const seen = this.byTx.get(txId)?.get(branchId);
    if (!seen) return;
    delete seen.nextAttemptAt;
    seen.acknowledgedAt = new Date(now).toISOString();
  }

  /** The drive ended (completed, a hazard left, or stopping): nothing of it is kept. */
  forget(txId: string): void {
    this.byTx.delete(txId);
  }

  of(txId: string): BranchRetries[] {
    return [...(this.byTx.get(txId)?.values() ?? [])].sort((a, b) => a.branchId - b.branchId).map((b) => ({ ...b }));
  }
}
