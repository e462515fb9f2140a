import { AbortReason, buildGid, errorMessage, isTwopcError, isTxId, TransactionAbortedError, TwopcError } from './ports/protocol';
import type { CompactReport, DecisionLog, DecisionRecord, LogRecord, OpenReport, TxSnapshot } from './ports/decision-log';
import type { BranchRef } from './ports/participant';
import { mintTxId } from './ports/owned-tx-id';
import { soleOwnership, type TransactionOwnership } from './ports/ownership';
import { CrashPoints } from './crash-points';
import type { EngineConfig } from './engine-config';
import { EngineLogger, silentLogger } from './ports/logger';
import type { EngineObserver } from './engine-observer';
import { branchList, CommitResult, LiveBranch, LiveTransaction } from './live-transaction';
import type { ParticipantRegistry } from './participant-registry';
import { OrphanRollback, OrphanScan, resolveTransaction, ResolveResult, rollbackOrphans, scanOrphans } from './admin-operations';
import { backoffDelay, sleep, waitAtMost } from './ports/backoff';
import { PhaseTwoDriver } from './phase-two';
import { decideUndecided, recover, RecoveryOptions, RecoveryReport } from './recovery';
import type { ResolverDeps } from './resolver-deps';
import { Sweeper, SweepReport } from './sweeper';
import { listTransactions, ListOptions, TransactionList } from './transaction-listing';
import { TransactionStatus, statusFromLive, statusFromSnapshot } from './transaction-status';
import type { BranchInfo, DecisionSource, Outcome, Vote } from './ports/types';

export interface EngineDeps {
  log: DecisionLog;
  participants: ParticipantRegistry;
  config: EngineConfig;
  crash?: CrashPoints;
  logger?: EngineLogger;
  observer?: EngineObserver;
  /** Several instances on a shared store: which logged transactions are this process's (default: all of them). */
  ownership?: TransactionOwnership;
}

export interface BeginOptions {
  timeoutMs?: number;
  metadata?: Record<string, unknown>;
}

/** A registered branch and the expiry of its transaction (a participant rolls back a held branch never asked to prepare by then). */
export interface EnlistedBranch extends BranchInfo {
  expiresAt: number;
}

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

export interface StartReport {
  log: OpenReport;
  recovery: RecoveryReport;
}

type EngineState = 'new' | 'starting' | 'ready' | 'stopping' | 'stopped';

/**
 * The coordinator engine: SPEC §3 (presumed abort, single-assignment decision)
 * and §4 (recovery, sweeps). It knows nothing of HTTP; the service, the CLI and
 * the in-process API all drive it through these methods.
 */
export class TransactionEngine {
  readonly config: EngineConfig;
  private readonly log: DecisionLog;
  private readonly participants: ParticipantRegistry;
  private readonly crash: CrashPoints;
  private readonly logger: EngineLogger;
  private readonly observer: EngineObserver;
  private readonly ownership: TransactionOwnership;
  private readonly live = new Map<string, LiveTransaction>();
  private readonly stopController = new AbortController();
  private readonly phaseTwo: PhaseTwoDriver;
  private readonly sweeper: Sweeper;
  private readonly resolver: ResolverDeps;
  private state: EngineState = 'new';

  constructor(deps: EngineDeps) {
    this.config = deps.config;
    this.log = deps.log;
    this.participants = deps.participants;
    this.crash = deps.crash ?? CrashPoints.disarmed();
    this.logger = deps.logger ?? silentLogger;
    this.observer = deps.observer ?? {};
    this.ownership = deps.ownership ?? soleOwnership;
    this.phaseTwo = new PhaseTwoDriver({
      log: this.log,
      participants: this.participants,
      config: this.config,
      crash: this.crash,
      logger: this.logger,
      observer: this.observer,
      stopSignal: this.stopController.signal,
    });
    this.resolver = {
      log: this.log,
      participants: this.participants,
      config: this.config,
      logger: this.logger,
      phaseTwo: this.phaseTwo,
      isLive: (txId) => this.live.has(txId),
      mayRecover: (snapshot) => this.ownership.mayRecover(snapshot),
      decide: (txId, branches, source, reason) => this.decideAbort(txId, branches, source, reason),
      decideCommitted: (txId, branches) => this.log.decide({ txId, at: Date.now(), outcome: 'commit', source: 'recovery', branches }),
    };
    this.sweeper = new Sweeper({ ...this.resolver, recoverExpired: () => this.recover({ onlyExpired: true, waitMs: 0 }) });
  }

  /** True once recovery has made a decision for every transaction in the log, and while the log still takes writes. */
  get ready(): boolean {
    return this.state === 'ready' && this.log.failure === undefined && this.ownership.holdsLease;
  }

  /** Set once the decision log refuses every write for good (disk full, I/O error): no new work until a restart. */
  get logFailure(): TwopcError | undefined {
    return this.log.failure;
  }

  /** Opens the log, resolves every in-doubt transaction, then starts the periodic sweep. */
  async start(): Promise<StartReport> {
    if (this.state !== 'new') throw new TwopcError('state-conflict', `engine already ${this.state}`);
    this.state = 'starting';
    const logReport = await this.log.open();
    if (logReport.tornTail) this.logger.warn({ tornTail: logReport.tornTail }, 'decision log: torn final record cut off');
    // Several instances: the lease first (and the previous process of this name, and expired ones, taken over), so recovery knows what is ours.
    await this.ownership.start?.();
    const recovery = await this.recover();
    this.state = 'ready';
    this.sweeper.start();
    this.logger.info({ log: logReport, recovery }, 'coordinator engine ready');
    return { log: logReport, recovery };
  }

  /** One recovery pass over the log: every unfinished transaction is decided and phase 2 resumed. */
  recover(options: RecoveryOptions = {}): Promise<RecoveryReport> {
    return recover(this.resolver, options);
  }

  /** One sweep of the participants' prepared transactions now. */
  sweep(): Promise<SweepReport> {
    return this.sweeper.sweepOnce();
  }

  async begin(options: BeginOptions = {}): Promise<TransactionStatus> {
    this.assertAccepting();
    const timeoutMs = options.timeoutMs ?? this.config.defaultTimeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > this.config.maxTimeoutMs) {
      throw new TwopcError('invalid-input', `timeoutMs must be an integer from 1 to ${this.config.maxTimeoutMs}`, { field: 'timeoutMs' });
    }
    const owner = this.ownership.token;
    // The id carries its owner: routing to it then never depends on the begin record, which is not forced.
    const id = mintTxId(owner);
    const createdAt = Date.now();
    const tx: LiveTransaction = {
      id,
      createdAt,
      expiresAt: createdAt + timeoutMs,
      metadata: options.metadata,
      state: 'active',
      branches: new Map(),
      nextBranchId: 1,
      enlistWrites: [],
    };
    const begun = this.log.append({ type: 'begin', txId: id, at: createdAt, expiresAt: createdAt + timeoutMs, metadata: options.metadata, ...(owner === undefined ? {} : { owner }) });
    if (owner === undefined) {
      // Not forced and not waited for: the first enlist's append follows it, and a lost begin is presumed abort.
      begun.catch((e) => this.logger.warn({ txId: id, err: errorMessage(e) }, 'could not log begin'));
    } else {
      // Several instances: any of them may get the next call for this transaction and must find
      // its owner in the store, so the begin is stored (not forced) before the id is handed out.
      await begun;
      // Stored under a lease this process lost meanwhile: the transaction is the new owner's (it aborts it).
      if (this.ownership.token !== owner) throw new TwopcError('fenced', 'this coordinator instance lost its lease while beginning the transaction; retry', { txId: id });
    }
    tx.timer = setTimeout(() => void this.expire(tx), timeoutMs);
    tx.timer.unref();
    this.live.set(id, tx);
    return statusFromLive(tx);
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
    const tx = this.live.get(txId) ?? (await this.notRunning(txId, 'enlist'));
    if (tx.state !== 'active' || tx.aborting) throw this.stateError(tx, 'enlist');
    if (!this.participants.accepts(participant, options.url)) {
      throw new TwopcError('invalid-input', `participant ${JSON.stringify(participant)} is not configured on this coordinator`, { field: 'participant' });
    }
    const branchId = tx.nextBranchId++;
    const info: BranchInfo = { branchId, gid: buildGid(this.config.gidPrefix, txId, branchId), participant, ...(options.url ? { url: options.url } : {}) };
    const eager = options.prepare === 'eager';
    tx.branches.set(branchId, { info, state: 'active', ...(eager ? { eager } : {}) });
    // The log keeps one transaction's records in append order, so the begin record is
    // written no later than this one.
    const written = this.log.append({ type: 'enlist', txId, at: Date.now(), branch: info }).then(() => this.crash.hit('after-enlist'));
    written.catch(() => undefined);
    // Commit waits for every registration write before any PREPARE, also for callers that await it here.
    tx.enlistWrites.push(written);
    if (options.awaitWrite !== false || eager) await written;
    return { ...info, expiresAt: tx.expiresAt };
  }

  /** Runs two-phase commit. Throws `TransactionAbortedError` (with the reason) if the transaction aborted. */
  async commit(txId: string): Promise<CommitResult> {
    const tx = this.live.get(txId);
    if (!tx) return this.commitResultFromLog(txId);
    if (tx.onePhaseOutcome) return this.onePhaseAnswer(tx);
    if (tx.committing) return tx.committing;
    if (tx.aborting) {
      await tx.aborting;
      throw this.abortedError(tx);
    }
    if (tx.state === 'aborted') throw this.abortedError(tx);
    if (tx.state !== 'active') throw this.stateError(tx, 'commit');
    this.assertAccepting();
    tx.committing = this.runCommit(tx);
    return tx.committing;
  }

  /** Aborts a transaction that has no commit decision. Idempotent; `state-conflict` if it committed. */
  async abort(txId: string, reason: Partial<AbortReason> = {}): Promise<{ txId: string; state: 'aborted' }> {
    const full: AbortReason = { cause: reason.cause ?? 'application', message: reason.message ?? 'aborted by the application', ...reason };
    const tx = this.live.get(txId);
    if (tx) {
      if (tx.onePhase) throw new TwopcError('state-conflict', `transaction ${txId} is committing (one phase); it cannot be aborted`, { txId, state: tx.state });
      await this.abortLive(tx, full, 'engine');
      return { txId, state: 'aborted' };
    }
    const snapshot = await this.snapshotOrThrow(txId);
    if (snapshot.outcome === 'commit') {
      throw new TwopcError('state-conflict', `transaction ${txId} is committed; it cannot be aborted`, { txId, state: 'committed' });
    }
    if (snapshot.completed) {
      if (snapshot.outcome === 'abort') return { txId, state: 'aborted' };
      throw new TwopcError('state-conflict', `transaction ${txId} is completed and its outcome is no longer recorded; it cannot be aborted`, { txId, state: 'completed' });
    }
    const decision = snapshot.decision ?? (await decideUndecided(this.resolver, snapshot, 'engine', full));
    if (!decision) throw this.onlyBranchUnknown(txId);
    if (decision.outcome === 'commit') throw new TwopcError('state-conflict', `transaction ${txId} is committed; it cannot be aborted`, { txId, state: 'committed' });
    if (!snapshot.completed) await waitAtMost(this.phaseTwo.drive(decision), this.config.commitWaitMs);
    return { txId, state: 'aborted' };
  }

  async status(txId: string): Promise<TransactionStatus | undefined> {
    if (!isTxId(txId)) throw new TwopcError('invalid-input', 'id must be a transaction id (UUID)', { field: 'id' });
    const tx = this.live.get(txId);
    if (tx) return statusFromLive(tx);
    const snapshot = await this.log.get(txId);
    return snapshot && statusFromSnapshot(snapshot);
  }

  /** True while this process runs the transaction (in memory, any state). */
  runsHere(txId: string): boolean {
    return this.live.has(txId);
  }

  /** True while the transaction runs here and may still take work (not committing, not aborting). */
  acceptsWork(txId: string): boolean {
    const tx = this.live.get(txId);
    return tx !== undefined && tx.state === 'active' && !tx.aborting;
  }

  /** Transactions live here or unfinished in the log, oldest first, optionally of one state (see `LIST_STATES`). */
  async list(options: ListOptions = {}): Promise<TransactionList> {
    const live = [...this.live.values()].map(statusFromLive);
    return listTransactions(live, await this.log.unfinished(), options);
  }

  /** Every logged event of a transaction, in order: the audit trail. */
  async history(txId: string): Promise<LogRecord[]> {
    const snapshot = await this.snapshotOrThrow(txId);
    return this.log.history(snapshot.txId);
  }

  /** An operator's decision through the register; never contradicts a recorded one (`state-conflict`). */
  resolve(txId: string, outcome: 'commit' | 'abort'): Promise<ResolveResult> {
    if (!isTxId(txId)) throw new TwopcError('invalid-input', 'id must be a transaction id (UUID)', { field: 'id' });
    return resolveTransaction(this.resolver, txId, outcome, this.config.commitWaitMs);
  }

  /** Prepared branches of ours on the direct participants that no transaction running here owns. */
  orphans(): Promise<OrphanScan> {
    return scanOrphans(this.resolver);
  }

  /** Ends every orphan through the register (abort, unless its transaction was decided commit). */
  rollbackOrphans(): Promise<OrphanRollback[]> {
    return rollbackOrphans(this.resolver, this.config.commitWaitMs);
  }

  /** Forgets completed transactions past retention. */
  compactLog(): Promise<CompactReport> {
    return this.log.compact();
  }

  /**
   * Starts phase 2 of an unfinished transaction now instead of after its
   * backoff (joining the drive in progress, if any), and waits up to `waitMs`
   * for it to finish. Nothing to retry (undecided, or completed): `retried` false.
   */
  async retry(txId: string, waitMs = 0): Promise<RetryResult> {
    const snapshot = await this.snapshotOrThrow(txId);
    const decision = snapshot.decision;
    const result: RetryResult = { txId, retried: false, decision: decision?.outcome ?? null, completed: snapshot.completed, hazards: snapshot.hazards.length };
    if (!decision || snapshot.completed) return result;
    this.phaseTwo.retryNow(txId);
    const done = await waitAtMost(this.phaseTwo.drive(decision), waitMs);
    return { ...result, retried: true, completed: done?.completed ?? false, hazards: done?.hazards ?? snapshot.hazards.length };
  }

  /** The decision log's kind (`file`, `postgres`, `redis`): what `log verify` can check. */
  get logKind(): string {
    return this.log.kind;
  }

  /** Unfinished transactions with a heuristic hazard (a gauge for operators); 0 unless ready. */
  async hazardousCount(): Promise<number> {
    if (this.state !== 'ready') return 0;
    let n = 0;
    for (const snapshot of await this.log.unfinished()) if (snapshot.hazards.length > 0) n += 1;
    return n;
  }

  /**
   * Stops taking work, lets commits in flight reach their decision, aborts
   * transactions that never started committing, stops phase-2 retries (recovery
   * resumes them) and closes the log.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    await this.sweeper.stop();
    const live = [...this.live.values()];
    await Promise.allSettled(live.map((tx) => (tx.committing || tx.decision ? tx.committing : this.abortLive(tx, { cause: 'shutdown', message: 'coordinator shutting down' }, 'engine'))));
    this.stopController.abort();
    await this.phaseTwo.settle();
    for (const tx of this.live.values()) clearTimeout(tx.timer);
    this.live.clear();
    // Given up only now, once the last records (`complete`s not waited for) are stored under it.
    await this.log.idle?.().catch(() => undefined);
    await this.ownership.stop?.();
    await this.log.close();
    this.state = 'stopped';
  }

  /**
   * This process lost its lease (another instance took it over): the
   * transactions it runs are that instance's now. Each is marked handed over:
   * those not committing are dropped here; a commit in flight writes no commit
   * decision and sends no one-phase COMMIT any more (it ends with
   * `outcome-unknown`, and the new owner decides); an abort in flight goes on
   * (an abort is always safe).
   */
  handOver(): number {
    let dropped = 0;
    for (const tx of [...this.live.values()]) {
      tx.handedOver = true;
      if (tx.committing || tx.aborting || tx.onePhase) continue;
      clearTimeout(tx.timer);
      this.live.delete(tx.id);
      dropped += 1;
    }
    if (dropped > 0) this.logger.warn({ dropped }, 'lease lost: live transactions handed over to the instance that took over');
    return dropped;
  }

  get liveCount(): number {
    return this.live.size;
  }

  /** Transactions with a decision whose phase 2 is still running here. */
  get inDoubtCount(): number {
    return this.phaseTwo.inFlight;
  }

  private async runCommit(tx: LiveTransaction): Promise<CommitResult> {
    const branches = [...tx.branches.values()];
    if (Date.now() >= tx.expiresAt) {
      await this.abortLive(tx, { cause: 'timeout', message: 'transaction timed out before commit' }, 'timeout');
      throw this.abortedError(tx);
    }
    tx.state = 'preparing';
    // A branch that prepared on its own (eager) is committed only under a forced commit decision:
    // recovery and sweeps decide abort for a prepared branch without one, and a COMMIT PREPARED
    // sent without a record could land after that abort. So no one-phase commit for it.
    const onePhase = this.config.onePhaseCommit && branches.length === 1 && !branches[0].eager;
    try {
      await Promise.all(tx.enlistWrites);
      // A one-phase COMMIT is the decision and leaves no decision record: its registration is made
      // durable first, or a crash that loses unsynced writes would have recovery presume it aborted.
      if (onePhase) await this.log.makeDurable?.();
    } catch (e) {
      await this.abortLive(tx, { cause: 'log-unavailable', message: `could not register a branch: ${errorMessage(e)}` }, 'engine');
      throw this.abortedError(tx);
    }
    // An abort that started meanwhile covers only the branches it saw: no PREPARE or one-phase
    // COMMIT may go out now. Nothing is awaited between this check and sending them.
    if (tx.aborting) {
      await tx.aborting;
      throw this.abortedError(tx);
    }
    if (branches.length === 0) return this.finishWithoutDecision(tx, 'read-only');
    if (onePhase) return this.commitOnePhase(tx, branches[0]);

    const prepareStarted = Date.now();
    const noVote = await this.prepareAll(tx, branches);
    this.observer.phaseLatency?.('prepare', Date.now() - prepareStarted);
    if (noVote) {
      await this.abortLive(tx, noVote, 'engine');
      throw this.abortedError(tx);
    }
    const prepared = branches.filter((b) => b.state === 'prepared').map((b) => b.info);
    if (prepared.length === 0) return this.finishWithoutDecision(tx, 'read-only');

    const decideStarted = Date.now();
    if (tx.handedOver) {
      // Lost the lease while preparing: the instance that took over decides (it knows every branch
      // prepared here: their registrations were stored before any PREPARE, under the old lease).
      this.abandon(tx, new Error('lease lost while preparing'));
      throw new TwopcError('outcome-unknown', `transaction ${tx.id}: this coordinator instance lost its lease while committing; the instance that took over decides it; ask again`, { txId: tx.id });
    }
    let decision: DecisionRecord;
    try {
      decision = await this.log.decide({ txId: tx.id, at: Date.now(), outcome: 'commit', source: 'engine', branches: prepared });
    } catch (e) {
      // The decision may or may not have reached the log. Recovery and sweeps read the register
      // back and finish the transaction either way; holding it here would only hide it from them.
      this.abandon(tx, e);
      throw new TwopcError('outcome-unknown', `transaction ${tx.id}: the commit decision could not be confirmed: ${errorMessage(e)}`, { txId: tx.id }, { cause: e });
    }
    this.observer.phaseLatency?.('decide', Date.now() - decideStarted);
    if (decision.outcome === 'abort') {
      // A timeout, sweep or operator decided first; the register's answer is final.
      tx.aborting ??= this.applyAbort(tx, decision);
      await tx.aborting;
      throw this.abortedError(tx);
    }
    this.crash.hit('after-commit-decision');
    tx.decision = decision;
    tx.state = 'committed';
    clearTimeout(tx.timer);
    const phaseTwo = this.phaseTwo.drive(decision).then((result) => {
      if (result.completed) {
        tx.state = 'completed';
        this.observer.transactionEnded?.('commit', Date.now() - tx.createdAt);
      }
      this.live.delete(tx.id);
      return result.completed;
    });
    const completed = await waitAtMost(phaseTwo, this.config.commitWaitMs);
    return { txId: tx.id, state: 'committed', phaseTwoPending: completed !== true };
  }

  /**
   * Phase 1: every branch prepares in parallel. Returns the first "no" (as an
   * abort reason), or undefined when every vote was yes or read-only. The
   * transaction's expiry ends the wait: a participant that never answers
   * cannot hold the decision back.
   */
  private async prepareAll(tx: LiveTransaction, branches: LiveBranch[]): Promise<AbortReason | undefined> {
    let first = true;
    const votes = branches.map((branch) => {
      const ref: BranchRef = { ...branch.info, txId: tx.id };
      const vote = this.prepareBranch(ref).then((v) => {
        if (v.vote === 'yes') {
          branch.state = 'prepared';
          if (first) {
            first = false;
            this.crash.hit('after-prepare-one');
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
    this.crash.hit('after-prepare-all');
    return undefined;
  }

  /** Any throw before the decision is a "no". */
  private async prepareBranch(ref: BranchRef): Promise<Vote> {
    try {
      return await this.participants.forBranch(ref).prepare(ref);
    } catch (e) {
      return { vote: 'no', reason: errorMessage(e) };
    }
  }

  /**
   * One branch that never prepared: the participant's own COMMIT is the
   * decision, and no decision record is written. A lost answer is resolved by
   * asking again (the participant learns the outcome from its marker once the
   * old connection is gone), never by guessing; the caller gets
   * `outcome-unknown` after `commitWaitMs` while the asking goes on.
   */
  private commitOnePhase(tx: LiveTransaction, branch: LiveBranch): Promise<CommitResult> {
    const ref: BranchRef = { ...branch.info, txId: tx.id };
    // From here no timer or caller may decide abort: the participant's COMMIT may land.
    clearTimeout(tx.timer);
    tx.onePhase = true;
    tx.onePhaseOutcome = this.onePhaseUntilKnown(tx, ref).then(async (outcome) => {
      if (outcome.kind === 'committed') {
        this.crash.hit('after-one-phase-commit');
        branch.state = 'committed';
        await this.finishWithoutDecision(tx, 'one-phase');
      } else if (outcome.kind === 'aborted') {
        branch.state = 'failed';
        // The outcome is known once abort is decided: waiting for the branch's rollback too (commitWaitMs,
        // the wait of onePhaseAnswer as well) answered outcome-unknown for a commit that never reached an
        // unreachable participant. Phase 2 retries that rollback in the background.
        await this.abortLive(tx, outcome.reason, 'engine', 0).catch((e) => this.abandon(tx, e));
      } else if (outcome.kind === 'hazard') {
        // Retrying cannot change what the participant reports: recorded (before the transaction
        // leaves memory, so a status read or a repeated commit finds it), left to an operator.
        branch.state = 'heuristic-hazard';
        await this.phaseTwo.recordHazard(tx.id, branch.info, outcome.detail);
        clearTimeout(tx.timer);
        this.live.delete(tx.id);
        return { kind: 'hazard', detail: outcome.detail };
      } else {
        // Stopping, or the lease was lost: recovery (here at the next start, or the instance that took over) asks the branch.
        this.abandon(tx, new Error('engine stopping'));
      }
      return { kind: outcome.kind };
    });
    return this.onePhaseAnswer(tx);
  }

  private async onePhaseAnswer(tx: LiveTransaction): Promise<CommitResult> {
    const outcome = await waitAtMost(tx.onePhaseOutcome!, this.config.commitWaitMs);
    if (outcome?.kind === 'committed') return { txId: tx.id, state: 'committed', phaseTwoPending: false };
    if (outcome?.kind === 'aborted') throw this.abortedError(tx);
    if (outcome?.kind === 'hazard') {
      throw new TwopcError('heuristic-hazard', `transaction ${tx.id}: its only participant reports a heuristic hazard on the one-phase commit (${outcome.detail}); an operator must resolve it`, { txId: tx.id });
    }
    throw new TwopcError('outcome-unknown', `transaction ${tx.id}: the one-phase commit's outcome is not known yet; ask again`, { txId: tx.id });
  }

  private async onePhaseUntilKnown(
    tx: LiveTransaction,
    ref: BranchRef,
  ): Promise<{ kind: 'committed' } | { kind: 'aborted'; reason: AbortReason } | { kind: 'hazard'; detail: string } | { kind: 'stopped' }> {
    for (let attempt = 0; ; attempt += 1) {
      // Without a valid lease no COMMIT goes out: the instance that takes over may be deciding this
      // transaction (it rolls the branch back first, so a COMMIT sent earlier cannot land after).
      if (tx.handedOver || !this.ownership.holdsLease) return { kind: 'stopped' };
      try {
        await this.participants.forBranch(ref).commit(ref, { onePhase: true });
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
        const delay = backoffDelay(attempt, this.config.phaseTwoBaseDelayMs, this.config.phaseTwoMaxDelayMs);
        this.logger.warn({ txId: ref.txId, gid: ref.gid, attempt, delay, err: errorMessage(e) }, 'one-phase commit outcome unknown; asking again');
        if (!(await sleep(delay, this.stopController.signal))) return { kind: 'stopped' };
      }
    }
  }

  /** No branch is left to finish (one-phase commit, all read-only, no branch): nothing to decide. */
  private async finishWithoutDecision(tx: LiveTransaction, kind: 'read-only' | 'one-phase'): Promise<CommitResult> {
    clearTimeout(tx.timer);
    tx.state = 'completed';
    this.live.delete(tx.id);
    // Not waited for: nothing is left to finish, and a lost `complete` is repaired by recovery.
    // Its `outcome` is the proof that this transaction, which has no decision record, committed.
    this.log.append({ type: 'complete', txId: tx.id, at: Date.now(), outcome: 'commit' }).catch((e) => this.logger.warn({ txId: tx.id, err: errorMessage(e) }, 'could not log completion'));
    this.observer.transactionEnded?.(kind, Date.now() - tx.createdAt);
    return { txId: tx.id, state: 'committed', phaseTwoPending: false };
  }

  /**
   * Decides abort through the register and rolls every branch back. Throws
   * `state-conflict` if commit won. One abort per transaction: `aborting` is
   * set before anything is awaited, which is what keeps a racing commit out.
   */
  private abortLive(tx: LiveTransaction, reason: AbortReason, source: DecisionSource, rollbackWaitMs = this.config.commitWaitMs): Promise<void> {
    tx.aborting ??= this.runAbort(tx, reason, source, rollbackWaitMs);
    return tx.aborting;
  }

  private async runAbort(tx: LiveTransaction, reason: AbortReason, source: DecisionSource, rollbackWaitMs: number): Promise<void> {
    let decision: DecisionRecord;
    try {
      decision = await this.decideAbort(tx.id, branchList(tx), source, reason);
    } catch (e) {
      this.abandon(tx, e);
      throw e;
    }
    if (decision.outcome === 'commit') {
      throw new TwopcError('state-conflict', `transaction ${tx.id} is committed; it cannot be aborted`, { txId: tx.id, state: 'committed' });
    }
    await this.applyAbort(tx, decision, rollbackWaitMs);
  }

  /** Hands a transaction whose decision could not be written or confirmed to recovery and sweeps. */
  private abandon(tx: LiveTransaction, error: unknown): void {
    clearTimeout(tx.timer);
    this.live.delete(tx.id);
    this.logger.error({ txId: tx.id, err: errorMessage(error) }, 'decision not confirmed; recovery and sweeps will finish the transaction');
  }

  private async applyAbort(tx: LiveTransaction, decision: DecisionRecord, rollbackWaitMs = this.config.commitWaitMs): Promise<void> {
    clearTimeout(tx.timer);
    tx.decision = decision;
    tx.abortReason ??= decision.reason ?? { cause: 'aborted', message: 'transaction aborted' };
    tx.state = 'aborted';
    this.crash.hit('after-abort-decision');
    const before = new Map<number, Promise<unknown>>();
    for (const b of tx.branches.values()) if (b.preparing) before.set(b.info.branchId, b.preparing);
    // The winning abort may have been decided elsewhere (a timeout, a sweep, another instance) before
    // every registration here reached it: roll back every branch this process knows as well.
    const missing = branchList(tx).filter((b) => !decision.branches.some((d) => d.gid === b.gid));
    const toRollBack = missing.length === 0 ? decision : { ...decision, branches: [...decision.branches, ...missing] };
    const rolledBack = this.phaseTwo.drive(toRollBack, before).then((result) => {
      if (result.completed) this.observer.transactionEnded?.('abort', Date.now() - tx.createdAt);
      this.live.delete(tx.id);
    });
    // The abort is settled once decided (presumed abort); a participant that stays down must not
    // hold the caller (an HTTP request) forever: phase 2 keeps retrying its rollback in the background.
    if (rollbackWaitMs > 0) await waitAtMost(rolledBack, rollbackWaitMs);
  }

  private decideAbort(txId: string, branches: BranchInfo[], source: DecisionSource, reason?: AbortReason): Promise<DecisionRecord> {
    return this.log.decide({ txId, at: Date.now(), outcome: 'abort', source, branches, ...(reason ? { reason } : {}) });
  }

  /** The transaction's timer: before the decision, a timeout allows abort. */
  private async expire(tx: LiveTransaction): Promise<void> {
    try {
      if (tx.state === 'active') {
        await this.abortLive(tx, { cause: 'timeout', message: `transaction timed out after ${tx.expiresAt - tx.createdAt} ms` }, 'timeout');
      }
      // In 'preparing' the commit itself sees the expiry (prepareAll's wait ends) and aborts.
    } catch (e) {
      this.logger.warn({ txId: tx.id, err: errorMessage(e) }, 'timeout abort failed; sweeps and recovery will finish it');
    }
  }

  private async commitResultFromLog(txId: string): Promise<CommitResult> {
    const snapshot = await this.snapshotOrThrow(txId);
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
    const won = await decideUndecided(this.resolver, snapshot, 'recovery', { cause: 'coordinator-restart', message: 'transaction was not committed before the coordinator restarted' });
    if (!won) throw this.onlyBranchUnknown(txId);
    void this.phaseTwo.drive(won);
    if (won.outcome === 'commit') return { txId, state: 'committed', phaseTwoPending: true };
    throw new TransactionAbortedError(txId, won.reason ?? { cause: 'aborted', message: 'transaction aborted' });
  }

  private onlyBranchUnknown(txId: string): TwopcError {
    return new TwopcError('outcome-unknown', `transaction ${txId}: its only branch may have committed in one phase and its participant cannot be asked now; ask again`, { txId });
  }

  private abortedError(tx: LiveTransaction): TransactionAbortedError {
    return new TransactionAbortedError(tx.id, tx.abortReason ?? { cause: 'aborted', message: 'transaction aborted' });
  }

  private stateError(tx: LiveTransaction, action: string): TwopcError {
    if (tx.state === 'aborted') return this.abortedError(tx);
    if (tx.aborting) return new TwopcError('state-conflict', `cannot ${action} transaction ${tx.id}: it is being aborted`, { txId: tx.id, state: 'aborted' });
    return new TwopcError('state-conflict', `cannot ${action} transaction ${tx.id}: it is ${tx.state}`, { txId: tx.id, state: tx.state });
  }

  /** Why a call that needs a running transaction cannot have it: bad id, unknown, or already ended (409). */
  private async notRunning(txId: string, action: string): Promise<never> {
    const snapshot = await this.snapshotOrThrow(txId);
    const status = statusFromSnapshot(snapshot);
    throw new TwopcError('state-conflict', `cannot ${action} transaction ${txId}: it is ${status.state}`, { txId, state: status.state });
  }

  private async snapshotOrThrow(txId: string): Promise<TxSnapshot> {
    if (!isTxId(txId)) throw new TwopcError('invalid-input', 'id must be a transaction id (UUID)', { field: 'id' });
    const snapshot = await this.log.get(txId);
    if (!snapshot) throw new TwopcError('not-found', `no transaction ${txId}`, { txId });
    return snapshot;
  }

  private assertAccepting(): void {
    const failure = this.log.failure;
    if (failure) throw failure;
    if (!this.ownership.holdsLease) throw new TwopcError('fenced', 'this coordinator instance holds no lease on the shared log right now (taken over, or the store unreachable); retry on another instance or shortly');
    if (this.state === 'ready') return;
    if (this.state === 'stopping' || this.state === 'stopped') throw new TwopcError('shutting-down', 'the coordinator is shutting down');
    throw new TwopcError('state-conflict', 'the coordinator has not finished recovery yet');
  }
}
