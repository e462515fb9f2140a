import type { CommitOptions } from './live-protocol';
import { AbortReason, TwopcError } from './ports/protocol';
import type { OpenReport } from './ports/decision-log';
import type { EngineConfig } from './engine-config';
import { EngineAdmin } from './engine-admin';
import { createEngineContext, type EngineContext, type EngineDeps } from './engine-context';
import { admissionRefusal } from './admission';
import { abortCarried, adoptCarried, carriesRegistration, type CarriedBranch } from './carried-transaction';
import { abortLive, abortTransaction, expire } from './live-endings';
import { BeginOptions, EnlistedBranch, LiveProtocol } from './live-protocol';
import type { CommitResult, LiveTransaction } from './live-transaction';
import type { RecoveryReport } from './recovery';
import { statusFromLive, type TransactionStatus } from './transaction-status';
import { noTracing, TRACE_ATTRIBUTES as A } from './ports/tracer';

export type { EngineDeps } from './engine-context';

const idOf = (tx: LiveTransaction): string => tx.id;
export type { BeginOptions, EnlistedBranch } from './live-protocol';
export type { CarriedBranch } from './carried-transaction';

export interface StartReport {
  log: OpenReport;
  recovery: RecoveryReport;
}

/**
 * The coordinator engine: SPEC §3 (presumed abort, single-assignment decision)
 * and §4 (recovery, sweeps). It knows nothing of HTTP; the service, the CLI and
 * the in-process API all drive it through these methods, and an operator's
 * operations through `admin`.
 */
export class TransactionEngine {
  readonly config: EngineConfig;
  /** Recovery, sweeps, listing, history, resolve, orphans, compaction, retry: what an operator runs. */
  readonly admin: EngineAdmin;
  /**
   * Whether the steps are spans (decided once, when the engine is built: see createEngineContext).
   * Without a tracer that records them, each step calls the protocol directly: a span of the
   * default tracer would still cost an async frame and its attributes per step.
   */
  readonly tracing: boolean;
  private readonly ctx: EngineContext;
  private readonly protocol: LiveProtocol;

  constructor(deps: EngineDeps) {
    this.ctx = createEngineContext(deps, (ctx, tx) => void expire(ctx, tx));
    this.tracing = this.ctx.tracer !== noTracing;
    this.config = this.ctx.config;
    this.protocol = new LiveProtocol(this.ctx);
    this.admin = new EngineAdmin(this.ctx);
  }

  /** True once recovery has made a decision for every transaction in the log, and while the log still takes writes. */
  get ready(): boolean {
    return this.ctx.state === 'ready' && this.ctx.log.failure === undefined && this.ctx.ownership.holdsLease;
  }

  /** Set once the decision log refuses every write for good (disk full, I/O error): no new work until a restart. */
  get logFailure(): TwopcError | undefined {
    return this.ctx.log.failure;
  }

  /** The decision log's kind (`file`, `postgres`, `redis`): what `log verify` can check. */
  get logKind(): string {
    return this.ctx.log.kind;
  }

  get liveCount(): number {
    return this.ctx.live.size;
  }

  /** Transactions with a decision whose phase 2 is still running here. */
  get inDoubtCount(): number {
    return this.ctx.phaseTwo.inFlight;
  }

  /** Opens the log, resolves every in-doubt transaction, then starts the periodic sweep. */
  async start(): Promise<StartReport> {
    if (this.ctx.state !== 'new') throw new TwopcError('state-conflict', `engine already ${this.ctx.state}`);
    this.ctx.state = 'starting';
    const logReport = await this.ctx.log.open();
    if (logReport.tornTail) this.ctx.logger.warn({ tornTail: logReport.tornTail }, 'decision log: torn final record cut off');
    // Several instances: the lease first (and the previous process of this name, and expired ones, taken over), so recovery knows what is ours.
    await this.ctx.ownership.start?.();
    const recovery = await this.admin.recover();
    this.ctx.state = 'ready';
    this.ctx.sweeper.start();
    this.ctx.logger.info({ log: logReport, recovery }, 'coordinator engine ready');
    return { log: logReport, recovery };
  }

  /** Refused with `over-capacity` (503) past the memory caps (see admissionRefusal). */
  begin(options: BeginOptions = {}): Promise<TransactionStatus> {
    return this.beginLive(options).then(statusFromLive);
  }

  /**
   * `begin` for the in-process API, which needs only the id: the same admission, span and
   * record, without building the status (its dates and branch list) that `begin` answers with.
   */
  beginId(options: BeginOptions = {}): Promise<string> {
    return this.beginLive(options).then(idOf);
  }

  private beginLive(options: BeginOptions): Promise<LiveTransaction> {
    const refused = admissionRefusal(this.ctx);
    if (refused) return Promise.reject(refused);
    if (!this.tracing) return this.protocol.begin(options);
    return this.ctx.tracer.span('twopc.begin', {}, async (annotate) => {
      const tx = await this.protocol.begin(options);
      annotate({ [A.txId]: tx.id });
      return tx;
    });
  }

  /** Registers a branch and assigns its GID (`LiveProtocol.enlist`: when the registration is written, `awaitWrite`, `prepare`). */
  enlist(txId: string, participant: string, options: { url?: string; awaitWrite?: boolean; prepare?: 'eager' | 'held' } = {}): Promise<EnlistedBranch> {
    if (!this.tracing) return this.protocol.enlist(txId, participant, options);
    return this.ctx.tracer.span('twopc.enlist', { [A.txId]: txId, [A.participant]: participant }, async (annotate) => {
      const branch = await this.protocol.enlist(txId, participant, options);
      annotate({ [A.gid]: branch.gid, [A.branchId]: branch.branchId });
      return branch;
    });
  }

  /**
   * Runs two-phase commit. Throws `TransactionAbortedError` (with the reason) if the transaction aborted.
   * `answerAt: 'decided'` resolves once the commit decision is durable (phaseTwoPending, as a
   * 202) instead of waiting up to `commitWaitMs` for phase 2; phase 2 goes on either way.
   */
  commit(txId: string, options: CommitOptions = {}): Promise<CommitResult> {
    if (!this.tracing) return this.protocol.commit(txId, options);
    return this.ctx.tracer.span('twopc.commit', { [A.txId]: txId }, async (annotate) => {
      const result = await this.protocol.commit(txId, options);
      annotate({ [A.outcome]: result.state });
      return result;
    });
  }

  /**
   * A commit that carries its branches' registrations (carried registration,
   * docs/protocol.md): records the transaction with them, then runs `commit`.
   * A retry is answered as a retried commit is.
   */
  commitCarried(txId: string, branches: readonly CarriedBranch[], options: CommitOptions = {}): Promise<CommitResult> {
    const refused = admissionRefusal(this.ctx);
    if (refused) return Promise.reject(refused);
    return this.ctx.tracer.span('twopc.commit', { [A.txId]: txId }, async (annotate) => {
      await adoptCarried(this.ctx, txId, branches);
      const result = await this.protocol.commit(txId, options);
      annotate({ [A.outcome]: result.state });
      return result;
    });
  }

  /** Whether this coordinator takes carried registrations (advertised at GET /v1/capabilities). */
  get carriesRegistration(): boolean {
    return carriesRegistration(this.ctx);
  }

  /** Aborts a transaction that has no commit decision. Idempotent; `state-conflict` if it committed. */
  abort(txId: string, reason: Partial<AbortReason> = {}): Promise<{ txId: string; state: 'aborted' }> {
    return this.ctx.tracer.span('twopc.abort', { [A.txId]: txId }, () => abortTransaction(this.ctx, txId, reason));
  }

  /**
   * An abort that carries its branches' registrations (carried abort,
   * docs/protocol.md): an id this coordinator does not have yet is recorded
   * with them and aborted, so its branches are rolled back now; any other is
   * aborted as `abort` does. `state-conflict` if it committed.
   */
  abortCarried(txId: string, branches: readonly CarriedBranch[], reason: Partial<AbortReason> = {}): Promise<{ txId: string; state: 'aborted' }> {
    return this.ctx.tracer.span('twopc.abort', { [A.txId]: txId }, () => abortCarried(this.ctx, txId, branches, reason));
  }

  /** Undefined for an id neither running here nor in the log. */
  status(txId: string): Promise<TransactionStatus | undefined> {
    return this.protocol.status(txId);
  }

  /** True while this process runs the transaction (in memory, any state). */
  runsHere(txId: string): boolean {
    return this.protocol.runsHere(txId);
  }

  /** True while the transaction runs here and may still take work (not committing, not aborting). */
  acceptsWork(txId: string): boolean {
    return this.protocol.acceptsWork(txId);
  }

  /**
   * Stops taking work, lets commits in flight reach their decision, aborts
   * transactions that never started committing, stops phase-2 retries (recovery
   * resumes them) and closes the log.
   */
  async stop(): Promise<void> {
    if (this.ctx.state === 'stopped' || this.ctx.state === 'stopping') return;
    this.ctx.state = 'stopping';
    await this.ctx.sweeper.stop();
    const live = [...this.ctx.live.values()];
    await Promise.allSettled(live.map((tx) => (tx.committing || tx.decision ? tx.committing : abortLive(this.ctx, tx, { cause: 'shutdown', message: 'coordinator shutting down' }, 'engine'))));
    this.ctx.stopController.abort();
    await this.ctx.phaseTwo.settle();
    this.ctx.deadlines.clear();
    this.ctx.live.clear();
    // Given up only now, once the last records (`complete`s not waited for) are stored under it.
    await this.ctx.log.idle?.().catch(() => undefined);
    await this.ctx.ownership.stop?.();
    await this.ctx.log.close();
    this.ctx.state = 'stopped';
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
    for (const tx of [...this.ctx.live.values()]) {
      tx.handedOver = true;
      if (tx.committing || tx.aborting || tx.onePhase) continue;
      this.ctx.deadlines.remove(tx);
      this.ctx.live.delete(tx.id);
      dropped += 1;
    }
    if (dropped > 0) this.ctx.logger.warn({ dropped }, 'lease lost: live transactions handed over to the instance that took over');
    return dropped;
  }
}
