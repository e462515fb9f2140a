import { errorMessage, parseGid, uuidV7Time } from './ports/protocol';
import type { TxSnapshot } from './ports/decision-log';
import { decideUndecided } from './recovery';
import type { ResolverDeps } from './resolver-deps';
import type { BranchInfo } from './ports/types';

export interface SweepReport {
  /** Prepared branches of our prefix seen on reachable participants. */
  seen: number;
  /** Prepared branches whose transaction was decided now (abort) by this sweep. */
  decidedAbort: number;
  /** Prepared branches handed to phase 2 (decided earlier, or now). */
  resolved: number;
  /** Too young to judge, or their transaction is live here. */
  skipped: number;
  /** Participants that could not be listed. */
  unreachable: string[];
}

export interface SweeperDeps extends ResolverDeps {
  /** Recovery of logged transactions that expired undecided (their process died); run with every pass. */
  recoverExpired(): Promise<unknown>;
}

/** What is assumed of a transaction the log has no record of (found only by a prepared branch): dated by its id. */
export function unknownTransaction(txId: string, deps: { config: { maxTimeoutMs: number } }): TxSnapshot {
  const createdAt = uuidV7Time(txId);
  return { txId, createdAt, expiresAt: createdAt + deps.config.maxTimeoutMs, branches: [], completed: false, hazards: [] };
}

/**
 * SPEC §4, continuously: finds prepared branches of our prefix on every
 * directly reachable participant. A branch whose transaction has no decision
 * and expired more than the grace period ago is decided abort through the
 * register; then the winning outcome is applied. This catches branches whose
 * registration or decision was lost, and any that phase 2 missed.
 */
export class Sweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<SweepReport>;

  constructor(private readonly deps: SweeperDeps) {}

  start(): void {
    if (this.deps.config.sweepIntervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.sweepOnce().catch((e) => this.deps.logger.error({ err: errorMessage(e) }, 'sweep failed'));
    }, this.deps.config.sweepIntervalMs);
    this.timer.unref();
  }

  /** Stops the timer; resolves when a pass already running has finished (it may still use the log). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One pass; concurrent callers share the pass in progress. */
  sweepOnce(): Promise<SweepReport> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<SweepReport> {
    const report: SweepReport = { seen: 0, decidedAbort: 0, resolved: 0, skipped: 0, unreachable: [] };
    const listable = this.deps.participants.all().filter((p) => p.listPrepared);
    await this.deps.recoverExpired().catch((e) => this.deps.logger.error({ err: errorMessage(e) }, 'periodic recovery failed'));
    await Promise.all(
      listable.map(async (participant) => {
        let prepared;
        try {
          prepared = await participant.listPrepared!(this.deps.config.gidPrefix);
        } catch (e) {
          report.unreachable.push(participant.name);
          this.deps.logger.warn({ participant: participant.name, err: errorMessage(e) }, 'sweep: participant unreachable');
          return;
        }
        for (const { gid } of prepared) {
          report.seen += 1;
          await this.resolveBranch(participant.name, gid, report);
        }
      }),
    );
    return report;
  }

  private async resolveBranch(participant: string, gid: string, report: SweepReport): Promise<void> {
    const { log, config, phaseTwo, logger } = this.deps;
    const parsed = parseGid(gid);
    if (!parsed || parsed.prefix !== config.gidPrefix) return;
    const { txId, branchId } = parsed;
    if (this.deps.isLive(txId) || phaseTwo.isDriving(txId)) {
      report.skipped += 1;
      return;
    }
    const snapshot = await log.get(txId);
    // Another live instance owns it and finishes it. With no record in the log (lost in a store crash,
    // or not visible yet), its id still names the owner (owned-tx-id.ts): never decided here meanwhile.
    if (!this.deps.mayRecover(snapshot ?? unknownTransaction(txId, this.deps))) {
      report.skipped += 1;
      return;
    }
    if (snapshot?.completed) {
      // Never driven again: that would only log a second `complete`, possibly after compaction forgot
      // the transaction. A prepared branch of an aborted one is covered by the abort and rolled back
      // alone, whether its decision lists it or not: one not listed was found on its own after phase 2
      // finished the others; a listed one may have prepared after phase 2's rollback found nothing
      // (an eager branch whose PREPARE came late). Rolling back writes nothing and is always safe.
      // A prepared branch of a committed one was committed since the listing was read.
      const found = snapshot.branches.find((b) => b.gid === gid) ?? { branchId, gid, participant };
      if (snapshot.outcome === 'abort' && (await phaseTwo.rollbackStray(txId, found))) report.resolved += 1;
      else report.skipped += 1;
      return;
    }
    if (snapshot && !snapshot.decision && snapshot.hazards.length > 0) {
      // Undecided with a heuristic hazard (a one-phase commit the participant could not confirm): an operator's.
      logger.warn({ txId, gid, participant }, 'sweep: undecided transaction with a heuristic hazard; left for an operator');
      report.skipped += 1;
      return;
    }
    const found: BranchInfo = snapshot?.branches.find((b) => b.branchId === branchId) ?? { branchId, gid, participant };
    let decision = snapshot?.decision;
    if (!decision) {
      const expiresAt = snapshot?.expiresAt ?? uuidV7Time(txId) + config.maxTimeoutMs;
      if (Date.now() < expiresAt + config.sweepGraceMs) {
        report.skipped += 1;
        return;
      }
      // Through recovery's rule: the register first for a prepared branch; a lone one not prepared is rolled back before it is judged.
      const basis: TxSnapshot = snapshot ?? unknownTransaction(txId, this.deps);
      const decided = await decideUndecided(this.deps, { ...basis, branches: withBranch(basis.branches, found) }, 'sweep');
      if (!decided) {
        report.skipped += 1;
        return;
      }
      decision = decided;
      if (decision.outcome === 'abort') report.decidedAbort += 1;
    }
    if (!decision.branches.some((b) => b.gid === gid)) {
      if (decision.outcome === 'commit') {
        // Prepared, yet not in its committed transaction's branch list: not something 2PC can produce. Never guess.
        logger.error({ txId, gid, participant }, 'sweep: prepared branch missing from its commit decision; left for an operator');
        report.skipped += 1;
        return;
      }
      decision = { ...decision, branches: withBranch(decision.branches, found) };
    }
    report.resolved += 1;
    void phaseTwo.drive(decision);
  }
}

function withBranch(branches: BranchInfo[], branch: BranchInfo): BranchInfo[] {
  return branches.some((b) => b.gid === branch.gid) ? branches : [...branches, branch];
}
