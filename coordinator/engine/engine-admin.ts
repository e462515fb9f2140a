import { oldestInDoubtSince } from './in-doubt-age';
import { isTxId, TwopcError } from './ports/protocol';
import type { CompactReport, LogRecord } from './ports/decision-log';
import { waitAtMost } from './ports/backoff';
import { OrphanRollback, OrphanScan, resolveTransaction, ResolveResult, rollbackOrphans, scanOrphans } from './admin-operations';
import type { EngineContext } from './engine-context';
import type { BranchRetries } from './phase-two-progress';
import { snapshotOrThrow } from './engine-errors';
import { logBegin } from './live-transaction';
import type { TxSnapshot } from './ports/decision-log';
import { recover, RecoveryOptions, RecoveryReport } from './recovery';
import type { SweepReport } from './sweeper';
import { listTransactions, ListOptions, TransactionList } from './transaction-listing';
import { hazardBranchCount, statusFromLive } from './transaction-status';
import { MAX_ACTION_NOTE_LENGTH, OUTCOMES, type OperatorAction, type Outcome } from './ports/types';
import { settleTransaction, type SettleResult } from './settle-operation';

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** What `retry` did. */
export interface RetryResult {
  txId: string;
  /** Phase 2 was started or woken; false when there is nothing to retry (no decision yet, or completed). */
  retried: boolean;
  decision: Outcome | null;
  /** Every branch acknowledged (within the wait). */
  completed: boolean;
  /** Branches left with a heuristic hazard. */
  hazards: number;
}

/** An operator's settle of a transaction with a heuristic hazard (see `EngineAdmin.settle`). */
export interface SettleRequest {
  /** Who settles it (a token's name, or `cli:<user>@<host>`): recorded with the note. */
  by: string;
  /** How the hazard was reconciled: required, recorded in the transaction's history. */
  note: string;
  /** Undecided transactions: how its branches ended (required). Decided ones: if given, must be the decision. */
  outcome?: Outcome;
}

/** What `phaseTwo` answers. */
export interface PhaseTwoReport {
  txId: string;
  /** Phase 2 is running here (or its completion being written). */
  driving: boolean;
  branches: BranchRetries[];
}

/** An operator's operations on the engine (`engine.admin`): what the admin API and the `twopc` command call. */
export class EngineAdmin {
  /** Settles running in this process: one at a time per transaction. */
  private readonly settling = new Set<string>();

  constructor(private readonly ctx: EngineContext) {}

  /** One recovery pass over the log: every unfinished transaction is decided and phase 2 resumed. */
  recover(options: RecoveryOptions = {}): Promise<RecoveryReport> {
    return this.ctx.tracer.span('twopc.recovery', {}, async (annotate) => {
      const report = await recover(this.ctx.resolver, options);
      annotate({ 'twopc.recovery.unfinished': report.unfinished, 'twopc.recovery.pending': report.pending });
      return report;
    });
  }

  /** One sweep of the participants' prepared transactions now. */
  sweep(): Promise<SweepReport> {
    return this.ctx.sweeper.sweepOnce();
  }

  /** Transactions live here or unfinished in the log, oldest first, optionally of one state (see `LIST_STATES`). */
  async list(options: ListOptions = {}): Promise<TransactionList> {
    const acked = (txId: string) => this.ctx.phaseTwo.acknowledged(txId);
    const live = [...this.ctx.live.values()].map((tx) => statusFromLive(tx, acked(tx.id)));
    return listTransactions(live, await this.ctx.log.unfinished(), options, acked);
  }

  /** Every logged event of a transaction, in order: the audit trail. */
  async history(txId: string): Promise<LogRecord[]> {
    const snapshot = await this.logged(txId);
    return this.ctx.log.history(snapshot.txId);
  }

  /**
   * An operator's decision through the register; never contradicts a recorded
   * one (`state-conflict`). `by` names the operator: the request is recorded in
   * the transaction's history first.
   */
  async resolve(txId: string, outcome: 'commit' | 'abort', by?: string): Promise<ResolveResult> {
    if (!isTxId(txId)) throw new TwopcError('invalid-input', 'id must be a transaction id (UUID)', { field: 'id' });
    if (by !== undefined) await this.record(txId, by, outcome === 'commit' ? 'resolve-commit' : 'resolve-abort');
    return resolveTransaction(this.ctx.resolver, txId, outcome, this.ctx.config.commitWaitMs);
  }

  /**
   * Ends an unfinished transaction with a heuristic hazard that an operator
   * reconciled by hand (`twopc settle`): the branches without a hazard are
   * finished first, then it is completed with its outcome, durably, before
   * this resolves. Refusals (`state-conflict`, `participant-unavailable`,
   * `owner-unavailable`, `not-found`) leave it unfinished (what they already did is safe to
   * do again: finished branches, a hazard met, an undecided one's decision); see settleTransaction.
   * The request and its note are recorded in the history first.
   */
  async settle(txId: string, request: SettleRequest): Promise<SettleResult> {
    if (!isTxId(txId)) throw new TwopcError('invalid-input', 'id must be a transaction id (UUID)', { field: 'id' });
    const note = typeof request.note === 'string' ? request.note.trim() : '';
    if (note.length === 0) throw new TwopcError('invalid-input', 'note is required: say how the hazard was reconciled', { field: 'note' });
    if (note.length > MAX_ACTION_NOTE_LENGTH) throw new TwopcError('invalid-input', `note must be at most ${MAX_ACTION_NOTE_LENGTH} characters`, { field: 'note' });
    // Text for people: a NUL would also be refused by a PostgreSQL log's jsonb reads of the record.
    if (CONTROL_CHARACTERS.test(note)) throw new TwopcError('invalid-input', 'note must not contain control characters (other than newline and tab)', { field: 'note' });
    if (request.outcome !== undefined && !(OUTCOMES as readonly unknown[]).includes(request.outcome)) {
      throw new TwopcError('invalid-input', `outcome must be one of ${OUTCOMES.join(', ')}`, { field: 'outcome' });
    }
    if (this.settling.has(txId)) throw new TwopcError('state-conflict', `transaction ${txId} is being settled already`, { txId });
    this.settling.add(txId);
    try {
      await this.record(txId, request.by, 'settle', note);
      return await settleTransaction(this.ctx.resolver, txId, request.outcome, request.by);
    } finally {
      this.settling.delete(txId);
    }
  }

  /**
   * Records an operator's action in the history of its transaction, before it
   * runs (so a refused or interrupted one is on record too). Only on a
   * transaction the log holds unfinished: compaction never forgets one of
   * those, so the record cannot be left alone to look like a transaction
   * (stores ignore such a record if it still is; see `ActionRecord`). A
   * record that cannot be written fails the action: none goes unrecorded.
   */
  private async record(txId: string, by: string, action: OperatorAction, note?: string): Promise<void> {
    this.writeHeldBegin(txId);
    const snapshot = await this.ctx.log.get(txId);
    if (!snapshot || snapshot.completed) return;
    await this.ctx.log.append({ type: 'action', txId, at: Date.now(), by, action, ...(note === undefined ? {} : { note }) });
  }

  /** Prepared branches of ours on the direct participants that no transaction running here owns. */
  orphans(): Promise<OrphanScan> {
    return scanOrphans(this.ctx.resolver);
  }

  /** Ends every orphan through the register (abort, unless its transaction was decided commit); `by` as in `resolve`. */
  async rollbackOrphans(by?: string): Promise<OrphanRollback[]> {
    if (by !== undefined) {
      const txIds = new Set((await this.orphans()).orphans.map((o) => o.txId));
      for (const txId of txIds) await this.record(txId, by, 'orphan-rollback');
    }
    return rollbackOrphans(this.ctx.resolver, this.ctx.config.commitWaitMs);
  }

  /** Forgets completed transactions past retention. */
  compactLog(): Promise<CompactReport> {
    return this.ctx.log.compact();
  }

  /** The log's own background compaction, now if it is due (DecisionLog.compactIfDue); settles when done. */
  async compactLogIfDue(): Promise<void> {
    await this.ctx.log.compactIfDue?.();
  }

  /**
   * Starts phase 2 of an unfinished transaction now instead of after its
   * backoff (joining the drive in progress, if any), and waits up to `waitMs`
   * for it to finish. Nothing to retry (undecided, or completed): `retried` false.
   * `by` as in `resolve`.
   */
  async retry(txId: string, waitMs = 0, by?: string): Promise<RetryResult> {
    const snapshot = await this.logged(txId);
    if (by !== undefined) await this.record(snapshot.txId, by, 'retry');
    const decision = snapshot.decision;
    const result: RetryResult = { txId, retried: false, decision: decision?.outcome ?? null, completed: snapshot.completed, hazards: hazardBranchCount(snapshot.hazards) };
    if (!decision || snapshot.completed) return result;
    this.ctx.phaseTwo.retryNow(txId);
    const done = await waitAtMost(this.ctx.phaseTwo.drive(decision), waitMs);
    return { ...result, retried: true, completed: done?.completed ?? false, hazards: done?.hazards ?? hazardBranchCount(snapshot.hazards) };
  }

  /**
   * Phase 2 of a transaction as this process drives it: whether it is being
   * driven here, and each branch whose attempts failed (how often, why, when
   * next). In memory only: nothing once the drive ended or on another instance.
   */
  async phaseTwo(txId: string): Promise<PhaseTwoReport> {
    const snapshot = await this.logged(txId);
    return { txId: snapshot.txId, driving: this.ctx.phaseTwo.isDriving(snapshot.txId), branches: this.ctx.phaseTwo.progress.of(snapshot.txId) };
  }

  /**
   * A running transaction with no branch yet has no record (its begin rides
   * with its first record: logBegin): an operator looking at it or acting on
   * it writes the begin now, so it has a history and the action is recorded.
   */
  private writeHeldBegin(txId: string): void {
    const tx = this.ctx.live.get(txId);
    if (tx) logBegin(this.ctx, tx);
  }

  private logged(txId: string): Promise<TxSnapshot> {
    this.writeHeldBegin(txId);
    return snapshotOrThrow(this.ctx, txId);
  }

  /** When the oldest transaction in doubt here began (epoch ms; see oldestInDoubtSince), or undefined when none is. */
  oldestInDoubtSince(): Promise<number | undefined> {
    return oldestInDoubtSince(this.ctx);
  }

  /** Unfinished transactions with a heuristic hazard (a gauge for operators); 0 unless ready. */
  async hazardousCount(): Promise<number> {
    if (this.ctx.state !== 'ready') return 0;
    // The file log counts them without listing every unfinished transaction (a scrape asks, and must stay cheap).
    if (this.ctx.log.unfinishedWithHazards) return this.ctx.log.unfinishedWithHazards();
    let n = 0;
    for (const snapshot of await this.ctx.log.unfinished()) if (snapshot.hazards.length > 0) n += 1;
    return n;
  }
}
