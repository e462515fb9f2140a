import { AbortReason, buildGid, errorMessage, isTxId, TransactionAbortedError, TwopcError } from './ports/protocol';
import type { AppendOptions, BeginRecord, DecisionRecord } from './ports/decision-log';
import type { BranchRef } from './ports/participant';
import { mintTxId } from './ports/owned-tx-id';
import { waitAtMost } from './ports/backoff';
import type { EngineContext } from './engine-context';
import { abortedError, assertAccepting, notRunning, onlyBranchUnknown, snapshotOrThrow, stateError } from './engine-errors';
import { abandon, abortLive, applyAbort, finishWithoutDecision } from './live-endings';
import { branchInfo, LiveTransaction, logBegin, type CommitResult, type LiveBranch } from './live-transaction';
import { commitOnePhase, onePhaseAnswer } from './one-phase-commit';
import { decideUndecided } from './recovery';
import { TransactionStatus, statusFromLive, statusFromSnapshot } from './transaction-status';
import type { BranchInfo, Vote } from './ports/types';

const voteNo = (e: unknown): Vote => ({ vote: 'no', reason: errorMessage(e) });
const UNHURRIED: AppendOptions = Object.freeze({ unhurried: true });

/** Options of a commit call. */
export interface CommitOptions {
  /** `completed` (default): answer once phase 2 completed, or after commitWaitMs. `decided`: answer once the commit decision is durable. */
  answerAt?: 'completed' | 'decided';
}

export interface BeginOptions {
  timeoutMs?: number;
  metadata?: Record<string, unknown>;
}

/** A registered branch and the expiry of its transaction (a participant rolls back a held branch never asked to prepare by then). */
export interface EnlistedBranch extends BranchInfo {
  expiresAt: number;
}

/** A transaction's life in this process: begin, enlist, commit (phase 1 and the decision), and what it reads of one. */
export class LiveProtocol {
  constructor(private readonly ctx: EngineContext) {}

  async begin(options: BeginOptions = {}): Promise<LiveTransaction> {
    assertAccepting(this.ctx);
    const timeoutMs = options.timeoutMs ?? this.ctx.config.defaultTimeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > this.ctx.config.maxTimeoutMs) {
      throw new TwopcError('invalid-input', `timeoutMs must be an integer from 1 to ${this.ctx.config.maxTimeoutMs}`, { field: 'timeoutMs' });
    }
    const owner = this.ctx.ownership.token;
    // The id carries its owner: routing to it then never depends on the begin record, which is not forced.
    const id = mintTxId(owner);
    const createdAt = Date.now();
    const tx = new LiveTransaction(id, createdAt, timeoutMs, options.metadata);
    // Live before its begin record can be seen: once it is stored, a recovery pass here (a takeover's,
    // an operator's) finds it unfinished and would decide abort for it, while its client goes on to
    // commit it, possibly in one phase, which never reads the register back.
    this.ctx.live.set(id, tx);
    const record: BeginRecord = { type: 'begin', txId: id, at: createdAt, expiresAt: createdAt + timeoutMs, metadata: options.metadata, ...(owner === undefined ? {} : { owner }) };
    if (owner === undefined) {
      // One process on the log: no other instance ever looks for this transaction, and until it has a
      // branch there is nothing in it to recover. Its begin goes out with its first record (logBegin).
      tx.unloggedBegin = record;
    } else {
      // Several instances: any of them may get the next call for this transaction and must find
      // its owner in the store, so the begin is stored (not forced) before the id is handed out.
      try {
        await this.ctx.log.append(record);
      } catch (e) {
        this.ctx.live.delete(id);
        throw e;
      }
      // Stored under a lease this process lost meanwhile (handOver dropped it): the transaction is the new owner's (it aborts it).
      if (this.ctx.ownership.token !== owner || this.ctx.live.get(id) !== tx) {
        this.ctx.live.delete(id);
        throw new TwopcError('fenced', 'this coordinator instance lost its lease while beginning the transaction; retry', { txId: id });
      }
    }
    this.ctx.deadlines.add(tx, timeoutMs);
    return tx;
  }

  /**
   * Registers a branch and assigns its GID. The registration is written to the
   * log before the branch's PREPARE can be sent (so a prepared branch is always
   * findable); `awaitWrite: false` returns before the write, for a caller that
   * prepares only through `commit` (which waits for it), such as the in-process API.
   * `prepare: 'eager'` says the participant prepares the branch on its own once
   * this returns: the write is then always awaited, and the branch is never
   * committed in one phase (see `runCommit`).
   */
  async enlist(txId: string, participant: string, options: { url?: string; awaitWrite?: boolean; prepare?: 'eager' | 'held' } = {}): Promise<EnlistedBranch> {
    const tx = this.ctx.live.get(txId) ?? (await notRunning(this.ctx, txId, 'enlist'));
    if (tx.state !== 'active' || tx.aborting) throw stateError(tx, 'enlist');
    if (!this.ctx.participants.accepts(participant, options.url)) {
      throw new TwopcError('invalid-input', `participant ${JSON.stringify(participant)} is not configured on this coordinator`, { field: 'participant' });
    }
    const branchId = tx.nextBranchId++;
    // `tx.id`, never the caller's `txId`: that one may be a slice of a request's URL, which the
    // log's record would keep alive, whole, for as long as the transaction runs.
    const info = branchInfo(branchId, buildGid(this.ctx.config.gidPrefix, tx.id, branchId), this.ctx.strings.intern(participant), options.url ? this.ctx.strings.intern(options.url) : undefined);
    const eager = options.prepare === 'eager';
    tx.addBranch({ info, state: 'active', eager });
    // Not waited for here: only the transaction's first PREPARE, round trips later, waits for the
    // write, so the log may hold it to the end of this turn (the branch's BEGIN goes out first).
    const hint = options.awaitWrite === false && !eager ? UNHURRIED : undefined;
    // The log keeps one transaction's records in append order, so the begin record is
    // written no later than this one (in the same write, on a single-instance log).
    logBegin(this.ctx, tx, hint);
    const appended = this.ctx.log.append({ type: 'enlist', txId: tx.id, at: Date.now(), branch: info }, hint);
    const written = this.ctx.crash.armedAt('after-enlist') ? appended.then(() => this.ctx.crash.hit('after-enlist')) : appended;
    written.catch(() => undefined);
    // Commit waits for every registration write before any PREPARE, also for callers that await it here.
    tx.addRegistration(written);
    if (options.awaitWrite !== false || eager) await written;
    return { ...info, expiresAt: tx.expiresAt };
  }

  /** Runs two-phase commit. Throws `TransactionAbortedError` (with the reason) if the transaction aborted. */
  async commit(txId: string, options: CommitOptions = {}): Promise<CommitResult> {
    const tx = this.ctx.live.get(txId);
    if (!tx) return this.commitResultFromLog(txId);
    if (tx.onePhaseOutcome) return onePhaseAnswer(this.ctx, tx);
    if (tx.committing) return tx.committing;
    if (tx.aborting) {
      await tx.aborting;
      throw abortedError(tx);
    }
    if (tx.state === 'aborted') throw abortedError(tx);
    if (tx.state !== 'active') throw stateError(tx, 'commit');
    assertAccepting(this.ctx);
    tx.committing = this.runCommit(tx, options.answerAt === 'decided' ? 0 : this.ctx.config.commitWaitMs);
    return tx.committing;
  }

  async status(txId: string): Promise<TransactionStatus | undefined> {
    if (!isTxId(txId)) throw new TwopcError('invalid-input', 'id must be a transaction id (UUID)', { field: 'id' });
    const tx = this.ctx.live.get(txId);
    if (tx) return statusFromLive(tx, this.ctx.phaseTwo.acknowledged(tx.id));
    const snapshot = await this.ctx.log.get(txId);
    return snapshot && statusFromSnapshot(snapshot, this.ctx.phaseTwo.acknowledged(snapshot.txId));
  }

  /** True while this process runs the transaction (in memory, any state). */
  runsHere(txId: string): boolean {
    return this.ctx.live.has(txId);
  }

  /** True while the transaction runs here and may still take work (not committing, not aborting). */
  acceptsWork(txId: string): boolean {
    const tx = this.ctx.live.get(txId);
    return tx !== undefined && tx.state === 'active' && !tx.aborting;
  }

  private async runCommit(tx: LiveTransaction, phaseTwoWaitMs: number): Promise<CommitResult> {
    const branches = tx.branches;
    if (Date.now() >= tx.expiresAt) {
      await abortLive(this.ctx, tx, { cause: 'timeout', message: 'transaction timed out before commit' }, 'timeout');
      throw abortedError(tx);
    }
    tx.state = 'preparing';
    // A branch that prepared on its own (eager) is committed only under a forced commit decision:
    // recovery and sweeps decide abort for a prepared branch without one, and a COMMIT PREPARED
    // sent without a record could land after that abort. So no one-phase commit for it.
    const onePhase = this.ctx.config.onePhaseCommit && branches.length === 1 && !branches[0].eager;
    try {
      await tx.registering;
      // A one-phase COMMIT is the decision and leaves no decision record: its registration is made
      // durable first, or a crash that loses unsynced writes would have recovery presume it aborted.
      // A carried transaction's registration was made durable already (adoptCarried, in `registering`).
      if (onePhase && !tx.carried) await this.ctx.log.makeDurable?.();
    } catch (e) {
      await abortLive(this.ctx, tx, { cause: 'log-unavailable', message: `could not register a branch: ${errorMessage(e)}` }, 'engine');
      throw abortedError(tx);
    }
    // An abort that started meanwhile covers only the branches it saw: no PREPARE or one-phase
    // COMMIT may go out now. Nothing is awaited between this check and sending them.
    if (tx.aborting) {
      await tx.aborting;
      throw abortedError(tx);
    }
    if (branches.length === 0) return finishWithoutDecision(this.ctx, tx, 'read-only');
    if (onePhase) return commitOnePhase(this.ctx, tx, branches[0]);

    const prepareStarted = Date.now();
    const noVote = await this.prepareAll(tx, branches);
    this.ctx.observer.phaseLatency?.('prepare', Date.now() - prepareStarted);
    if (noVote) {
      await abortLive(this.ctx, tx, noVote, 'engine');
      throw abortedError(tx);
    }
    const prepared = branches.filter((b) => b.state === 'prepared').map((b) => b.info);
    if (prepared.length === 0) return finishWithoutDecision(this.ctx, tx, 'read-only');

    const decideStarted = Date.now();
    if (tx.handedOver) {
      // Lost the lease while preparing: the instance that took over decides (it knows every branch
      // prepared here: their registrations were stored before any PREPARE, under the old lease).
      abandon(this.ctx, tx, new Error('lease lost while preparing'));
      throw new TwopcError('outcome-unknown', `transaction ${tx.id}: this coordinator instance lost its lease while committing; the instance that took over decides it; ask again`, { txId: tx.id });
    }
    let decision: DecisionRecord;
    try {
      decision = await this.ctx.log.decide({ txId: tx.id, at: Date.now(), outcome: 'commit', source: 'engine', branches: prepared });
    } catch (e) {
      // The decision may or may not have reached the log. Recovery and sweeps read the register
      // back and finish the transaction either way; holding it here would only hide it from them.
      abandon(this.ctx, tx, e);
      throw new TwopcError('outcome-unknown', `transaction ${tx.id}: the commit decision could not be confirmed: ${errorMessage(e)}`, { txId: tx.id }, { cause: e });
    }
    this.ctx.observer.phaseLatency?.('decide', Date.now() - decideStarted);
    if (decision.outcome === 'abort') {
      // A timeout, sweep or operator decided first; the register's answer is final.
      tx.aborting ??= applyAbort(this.ctx, tx, decision);
      await tx.aborting;
      throw abortedError(tx);
    }
    this.ctx.crash.hit('after-commit-decision');
    tx.decision = decision;
    tx.state = 'committed';
    this.ctx.deadlines.remove(tx);
    const phaseTwo = this.ctx.phaseTwo.drive(decision).then((result) => {
      if (result.completed) {
        tx.state = 'completed';
        this.ctx.observer.transactionEnded?.('commit', Date.now() - tx.createdAt);
      }
      this.ctx.live.delete(tx.id);
      return result.completed;
    });
    const completed = phaseTwoWaitMs > 0 ? await waitAtMost(phaseTwo, phaseTwoWaitMs) : false;
    return { txId: tx.id, state: 'committed', phaseTwoPending: completed !== true };
  }

  /**
   * Phase 1: every branch prepares in parallel. Returns the first "no" (as an
   * abort reason), or undefined when every vote was yes or read-only. The
   * transaction's expiry ends the wait: a participant that never answers
   * cannot hold the decision back.
   */
  private async prepareAll(tx: LiveTransaction, branches: readonly LiveBranch[]): Promise<AbortReason | undefined> {
    let first = true;
    const votes = branches.map((branch) => {
      const ref: BranchRef = { ...branch.info, txId: tx.id };
      const vote = this.prepareBranch(ref).then((v) => {
        if (v.vote === 'yes') {
          branch.state = 'prepared';
          // The participant's proof of what the branch will have done (its xid): it goes into the
          // commit decision, so phase 2 can tell "already committed" from a hazard without a marker.
          if (v.xid !== undefined) branch.info = Object.freeze({ ...branch.info, xid: v.xid });
          if (first) {
            first = false;
            this.ctx.crash.hit('after-prepare-one');
          }
        } else if (v.vote === 'read-only') branch.state = 'read-only';
        else branch.state = 'failed';
        return { branch, vote: v };
      });
      branch.preparing = vote;
      return vote;
    });
    const remaining = tx.expiresAt - Date.now();
    const settled = await waitAtMost(Promise.all(votes), Math.max(remaining, 0));
    if (settled === undefined) return { cause: 'timeout', message: `not every branch answered PREPARE within the transaction's timeout` };
    const no = settled.find((s) => s.vote.vote === 'no');
    if (no && no.vote.vote === 'no') {
      return { cause: 'vote-no', message: no.vote.reason, branchId: no.branch.info.branchId, participant: no.branch.info.participant, ...(no.vote.sqlState ? { sqlState: no.vote.sqlState } : {}) };
    }
    this.ctx.crash.hit('after-prepare-all');
    return undefined;
  }

  /** Any throw before the decision is a "no". */
  private prepareBranch(ref: BranchRef): Promise<Vote> {
    try {
      // Promise.resolve: a participant written in plain JavaScript may answer its vote directly, or
      // with a thenable (a native promise passes through unchanged, at no cost).
      return Promise.resolve(this.ctx.participants.forBranch(ref).prepare(ref)).catch(voteNo);
    } catch (e) {
      return Promise.resolve(voteNo(e));
    }
  }

  private async commitResultFromLog(txId: string): Promise<CommitResult> {
    const snapshot = await snapshotOrThrow(this.ctx, txId);
    // The decision, or for a completed transaction what its outcome record proves (a one-phase commit has no decision).
    if (snapshot.outcome === 'commit') return { txId, state: 'committed', phaseTwoPending: !snapshot.completed };
    if (snapshot.outcome === 'abort') throw new TransactionAbortedError(txId, snapshot.decision?.reason ?? { cause: 'aborted', message: 'transaction aborted' });
    if (snapshot.completed) {
      // A `complete` that proves no outcome (written after the transaction was forgotten): never read as committed.
      throw new TwopcError('outcome-unknown', `transaction ${txId} is completed, but its outcome is no longer recorded`, { txId });
    }
    if (snapshot.hazards.length > 0) {
      throw new TwopcError('outcome-unknown', `transaction ${txId}: outcome unknown (${snapshot.hazards[0].detail}); an operator must resolve it`, { txId });
    }
    // In the log, undecided and not running here: its coordinator process died. Recovery's rule
    // applies (a lone branch may have committed in one phase), never a blind presumed abort.
    const won = await decideUndecided(this.ctx.resolver, snapshot, 'recovery', { cause: 'coordinator-restart', message: 'transaction was not committed before the coordinator restarted' });
    if (!won) throw onlyBranchUnknown(txId);
    void this.ctx.phaseTwo.drive(won);
    if (won.outcome === 'commit') return { txId, state: 'committed', phaseTwoPending: true };
    throw new TransactionAbortedError(txId, won.reason ?? { cause: 'aborted', message: 'transaction aborted' });
  }
}
