import { CrashPoints } from '../engine/crash-points';
import { EngineConfigInput, parseEngineConfig } from '../engine/engine-config';
import { silentLogger, type EngineLogger } from '../engine/ports/logger';
import type { EngineObserver } from '../engine/engine-observer';
import { ParticipantRegistry } from '../engine/participant-registry';
import { BeginOptions, StartReport, TransactionEngine } from '../engine/transaction-engine';
import { errorMessage, TwopcError } from '../engine/ports/protocol';
import type { DecisionLog } from '../engine/ports/decision-log';
import { InstanceOptions, sharedLogMembership } from './shared-log-lease';
import { BranchOpener, TransactionScope } from './transaction-scope';
import { otelTracer } from '../tracing/otel-tracer';
import { MarkerPruning, MAX_TIMER_MS, prunesMarkers } from '../participants/postgres/marker-pruning';

export interface TransactionOptions extends BeginOptions {
  /**
   * Databases the work will touch: their branches open in parallel before
   * `work` runs instead of one after the other at first use.
   */
  databases?: readonly string[];
}

export interface CoordinatorOptions {
  /**
   * The decision log (e.g. `new FileDecisionLog({ dir: './data' })`). The
   * coordinator opens and closes it. On a PostgreSQL or Redis log shared with
   * other processes (other apps, `twopc serve`) it holds a lease like any
   * instance (see `instance`) and recovers only its own transactions.
   */
  log: DecisionLog;
  /** This process's lease on a shared log (ignored on a file log). */
  instance?: InstanceOptions;
  /** The databases a transaction may touch, by name (e.g. PostgresParticipant instances). */
  databases: BranchOpener[];
  engine?: EngineConfigInput;
  /**
   * How often `twopc_marker` is pruned in `databases` (those with `pruneMarkers`, e.g.
   * PostgresParticipant: each keeps a marker its own `markerRetentionMs` after its
   * commit); 0 turns it off. Default 1 h, as the SDK's `pruneIntervalMs`.
   */
  pruneIntervalMs?: number;
  logger?: EngineLogger;
  observer?: EngineObserver;
  /** Default: from TWOPC_CRASH_AT (crash tests). */
  crashPoints?: CrashPoints;
}

/**
 * The in-process coordinator: an app that talks to several PostgreSQL
 * databases itself runs one global transaction over all of them.
 *
 * @example
 * const coordinator = await Coordinator.start({ log: new FileDecisionLog({ dir: './data' }), databases: [ledgerA, ledgerB] });
 * await coordinator.transaction(async (tx) => {
 *   await tx.db('ledger_a').query('update accounts set balance = balance - $1 where id = $2', [10, 1]);
 *   await tx.db('ledger_b').query('update accounts set balance = balance + $1 where id = $2', [10, 7]);
 * });
 */
export class Coordinator {
  private constructor(
    readonly engine: TransactionEngine,
    private readonly databases: ReadonlyMap<string, BranchOpener>,
    readonly startReport: StartReport,
    private readonly pruning: MarkerPruning,
  ) {}

  /**
   * Builds the engine, opens the log (on a shared log: registers this
   * process's lease and takes over expired ones) and runs recovery before
   * returning.
   */
  static async start(options: CoordinatorOptions): Promise<Coordinator> {
    const config = parseEngineConfig(options.engine);
    const pruneIntervalMs = options.pruneIntervalMs;
    if (pruneIntervalMs !== undefined && (!Number.isInteger(pruneIntervalMs) || pruneIntervalMs < 0 || pruneIntervalMs > MAX_TIMER_MS)) {
      throw new TwopcError('invalid-config', `pruneIntervalMs must be an integer from 0 (no marker pruning) to ${MAX_TIMER_MS} (the longest delay a Node timer keeps)`, { field: 'pruneIntervalMs' });
    }
    const databases = new Map<string, BranchOpener>();
    for (const db of options.databases) {
      if (databases.has(db.name)) throw new TwopcError('invalid-config', `database ${JSON.stringify(db.name)} is configured twice`, { field: 'databases' });
      databases.set(db.name, db);
    }
    const logger = options.logger ?? silentLogger;
    let engine: TransactionEngine | undefined;
    const membership = sharedLogMembership(options.log, options.instance, config, logger, () => engine);
    engine = new TransactionEngine({
      log: options.log,
      ...(membership ? { ownership: membership } : {}),
      participants: new ParticipantRegistry(databases.values()),
      config,
      crash: options.crashPoints ?? CrashPoints.fromEnv(),
      logger,
      observer: options.observer,
      tracer: otelTracer,
    });
    const pruning = new MarkerPruning({ databases: [...databases.values()].filter(prunesMarkers), logger, ...(pruneIntervalMs === undefined ? {} : { intervalMs: pruneIntervalMs }) });
    const report = await engine.start();
    pruning.start();
    return new Coordinator(engine, databases, report, pruning);
  }

  /**
   * Runs `work` as one global transaction: every database it touched commits,
   * or none does. If `work` throws, the transaction aborts and the error is
   * rethrown; if a branch votes no or the transaction times out,
   * `TransactionAbortedError` says which branch and why.
   */
  transaction<T>(work: (tx: TransactionScope) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    // Traced as the engine is (decided once, at start): without tracing, not even a span lookup per transaction.
    if (!this.engine.tracing) return this.run(work, options);
    // One span around the whole transaction: its begin, enlists and commit are its children.
    return otelTracer.span('twopc.transaction', {}, () => this.run(work, options));
  }

  private async run<T>(work: (tx: TransactionScope) => Promise<T>, options: TransactionOptions): Promise<T> {
    const { databases, ...begin } = options;
    const id = await this.engine.beginId(begin);
    const scope = new TransactionScope(id, this.engine, this.databases);
    let value: T;
    try {
      if (databases) scope.prefetch(databases);
      value = await work(scope);
    } catch (e) {
      await scope.seal();
      await this.engine.abort(id, { cause: 'application', message: `work failed: ${errorMessage(e)}` }).catch(() => undefined);
      throw e;
    }
    const opening = scope.seal();
    if (opening) await opening;
    await this.engine.commit(id);
    return value;
  }

  /** Stops marker pruning and the engine (commits in flight reach their decision) and closes the log. Does not end the databases' pools. */
  async close(): Promise<void> {
    await this.pruning.stop();
    await this.engine.stop();
  }
}
