import type { BranchBook } from './branch-book';
import type { BranchService } from './branch-service';
import type { BranchRef } from './branch-types';
import type { CoordinatorClient } from './coordinator-client';
import { errorMessage, isTwopcError } from './errors';
import { parseGid, uuidV7Time } from './gid';
import type { PostgresParticipant } from './postgres';
import type { SdkLogger } from './sdk-logger';
import type { TransactionAnswer } from './wire';

export interface SelfSweepDeps {
  name: string;
  gidPrefix: string;
  sweepGraceMs: number;
  presumeAbortAfterMs: number;
  /** Lists this database's prepared branches. */
  postgres: PostgresParticipant;
  /** Ends them, so the branch book learns it (a branch rolled back here is never answered yes again). */
  service: BranchService;
  coordinator: CoordinatorClient;
  book: BranchBook;
  logger: SdkLogger;
}

/** What one pass did. */
export interface SelfSweepReport {
  /** Prepared branches of our prefix in this database. */
  seen: number;
  committed: number;
  rolledBack: number;
  /** Too young, or being worked on by a coordinator call right now. */
  skipped: number;
  /** Undecided, unknown but not old enough to presume abort, or not endable now: asked again next pass. */
  left: number;
  /** The coordinator could not be asked: the pass stopped there, everything is left for the next one. */
  coordinatorUnreachable: boolean;
}

/**
 * SPEC §4, participant side: this database's prepared branches of our
 * prefix, older than the grace period, are ended by asking the coordinator
 * for their transaction's outcome. That ends a branch whose coordinator lost
 * its participant list, or whose phase 2 call never arrived.
 *
 * - decision commit → COMMIT PREPARED, but only if the coordinator lists the
 *   branch: a commit decision is forced with every branch that voted yes, so
 *   a prepared branch missing from it is a contradiction left to an operator;
 * - decision abort → ROLLBACK PREPARED;
 * - no decision yet → left (the coordinator's timeout or recovery decides);
 * - unknown transaction (404) → presumed abort, only when safe: the 404 must
 *   be the coordinator's own problem answer (`not-found`), not a proxy's or a
 *   wrong URL's; and both the branch and its transaction (whose UUID v7 holds
 *   its start time) must be older than `presumeAbortAfterMs`. Before that a
 *   transaction may be live in another coordinator instance whose records are
 *   not yet visible to this one, and it could still decide commit; after its
 *   longest timeout it cannot any more, so no record means no commit decision;
 * - the transaction's owner cannot answer (503 `owner-unavailable`) → left,
 *   asked again; the pass goes on with the other branches;
 * - the coordinator unreachable (or any other answer) → left, asked again.
 */
export class SelfSweep {
  private running: Promise<SelfSweepReport> | undefined;

  constructor(private readonly deps: SelfSweepDeps) {}

  /** One pass; concurrent callers share the pass in progress. */
  sweepOnce(): Promise<SelfSweepReport> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<SelfSweepReport> {
    const { deps } = this;
    const report: SelfSweepReport = { seen: 0, committed: 0, rolledBack: 0, skipped: 0, left: 0, coordinatorUnreachable: false };
    const prepared = await deps.postgres.listPrepared(deps.gidPrefix);
    report.seen = prepared.length;
    const now = Date.now();
    for (const [index, branch] of prepared.entries()) {
      const parsed = parseGid(branch.gid);
      if (!parsed || now - branch.preparedAt < deps.sweepGraceMs || deps.book.busy(branch.gid)) {
        report.skipped += 1;
        continue;
      }
      const ref: BranchRef = { txId: parsed.txId, branchId: parsed.branchId, gid: branch.gid, participant: deps.name };
      let tx: TransactionAnswer | undefined;
      try {
        tx = await deps.coordinator.get(ref.txId);
      } catch (e) {
        if (isTwopcError(e, 'owner-unavailable')) {
          // This transaction's owner cannot be reached (or serves no requests: an in-process
          // coordinator); the coordinator answers for others: go on with them.
          deps.logger.warn({ gid: ref.gid, err: errorMessage(e) }, 'twopc self-sweep: the coordinator instance owning this transaction cannot answer now; retrying next pass');
          report.left += 1;
          continue;
        }
        if (!isTwopcError(e, 'not-found')) {
          deps.logger.warn({ gid: ref.gid, err: errorMessage(e) }, 'twopc self-sweep: cannot ask the coordinator; retrying next pass');
          report.coordinatorUnreachable = true;
          report.left += prepared.length - index;
          return report;
        }
      }
      const action = this.judge(ref, tx, branch.preparedAt, now);
      if (action === 'leave') {
        report.left += 1;
        continue;
      }
      try {
        // Through the branch service: its per-GID queue keeps this apart from a
        // coordinator call on the branch, and it records the outcome, so a
        // prepare arriving later is never answered from a yes given before.
        if (action === 'commit') await deps.service.commit(ref, false);
        else await deps.service.rollback(ref, tx ? 'its transaction was decided abort (self-sweep)' : 'the coordinator does not know its transaction: presumed abort (self-sweep)');
        if (action === 'commit') report.committed += 1;
        else report.rolledBack += 1;
        deps.logger.info({ gid: ref.gid, txId: ref.txId, action }, 'twopc self-sweep: ended a prepared branch');
      } catch (e) {
        report.left += 1;
        deps.logger.warn({ gid: ref.gid, action, err: errorMessage(e) }, 'twopc self-sweep: could not end a prepared branch');
      }
    }
    return report;
  }

  private judge(ref: BranchRef, tx: TransactionAnswer | undefined, preparedAt: number, now: number): 'commit' | 'rollback' | 'leave' {
    if (!tx) {
      const since = Math.max(preparedAt, uuidV7Time(ref.txId));
      return now - since >= this.deps.presumeAbortAfterMs ? 'rollback' : 'leave';
    }
    if (tx.decision === 'abort') return 'rollback';
    if (tx.decision !== 'commit') return 'leave';
    if (tx.branches.some((b) => b.gid === ref.gid)) return 'commit';
    this.deps.logger.error(
      { gid: ref.gid, txId: ref.txId },
      'twopc self-sweep: the transaction committed but its coordinator does not list this prepared branch; left for an operator (heuristic hazard)',
    );
    return 'leave';
  }
}
