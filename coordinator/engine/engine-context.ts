import { setMaxListeners } from 'node:events';
import type { AbortReason } from './ports/protocol';
import type { DecisionLog, DecisionRecord } from './ports/decision-log';
import { ownerOf, soleOwnership, type TransactionOwnership } from './ports/ownership';
import { CrashPoints } from './crash-points';
import { DeadlineQueue } from './deadline-queue';
import type { EngineConfig } from './engine-config';
import { EngineLogger, silentLogger } from './ports/logger';
import type { EngineObserver } from './engine-observer';
import type { LiveTransaction } from './live-transaction';
import type { ParticipantRegistry } from './participant-registry';
import { PhaseTwoDriver } from './phase-two';
import { recover } from './recovery';
import type { ResolverDeps } from './resolver-deps';
import { StringPool } from './string-pool';
import { Sweeper } from './sweeper';
import type { BranchInfo, DecisionSource } from './ports/types';
import { noTracing, type EngineTracer } from './ports/tracer';
import { tracedLog, tracedParticipant } from './tracing';

export interface EngineDeps {
  log: DecisionLog;
  participants: ParticipantRegistry;
  config: EngineConfig;
  crash?: CrashPoints;
  logger?: EngineLogger;
  observer?: EngineObserver;
  /** Several instances on a shared store: which logged transactions are this process's (default: all of them). */
  ownership?: TransactionOwnership;
  /** Spans for the engine's steps (coordinator/tracing/ has the OpenTelemetry one); default none. */
  tracer?: EngineTracer;
}

export type EngineState = 'new' | 'starting' | 'ready' | 'stopping' | 'stopped';

/** What every part of the engine shares: its dependencies, the transactions live here, and its state. */
export interface EngineContext {
  readonly config: EngineConfig;
  readonly log: DecisionLog;
  readonly participants: ParticipantRegistry;
  readonly crash: CrashPoints;
  readonly logger: EngineLogger;
  readonly observer: EngineObserver;
  readonly ownership: TransactionOwnership;
  readonly tracer: EngineTracer;
  readonly live: Map<string, LiveTransaction>;
  /** The deadline of every live transaction that a timeout may still abort (`expire` when due). */
  readonly deadlines: DeadlineQueue<LiveTransaction>;
  /** Participant names and URLs, one copy each (see StringPool). */
  readonly strings: StringPool;
  /** Aborted by `stop`: ends phase-2 retries and the asking of a one-phase commit's outcome. */
  readonly stopController: AbortController;
  readonly phaseTwo: PhaseTwoDriver;
  readonly sweeper: Sweeper;
  readonly resolver: ResolverDeps;
  state: EngineState;
}

/**
 * `onExpired`: what a transaction's timeout does (live-endings' `expire`; passed in
 * because that module builds on this one).
 */
export function createEngineContext(deps: EngineDeps, onExpired: (ctx: EngineContext, tx: LiveTransaction) => void): EngineContext {
  const config = deps.config;
  // Decided once: an application registers its tracing SDK before it starts the coordinator.
  const tracing = deps.tracer !== undefined && (deps.tracer.active?.() ?? true);
  const tracer = tracing ? deps.tracer! : noTracing;
  // Traced at the seams: every decision written and every participant call, whoever makes it.
  const log = tracing ? tracedLog(deps.log, tracer) : deps.log;
  const participants = deps.participants;
  if (tracing) participants.decorate((participant) => tracedParticipant(participant, tracer));
  const crash = deps.crash ?? CrashPoints.disarmed();
  const logger = deps.logger ?? silentLogger;
  const observer = deps.observer ?? {};
  const ownership = deps.ownership ?? soleOwnership;
  const live = new Map<string, LiveTransaction>();
  const stopController = new AbortController();
  // Every wait of phase 2 (a backoff, an abort waiting for a PREPARE in flight) listens to this one
  // signal: as many at once as transactions in that state, each removed when its wait ends. Node's
  // leak warning past ten listeners would be a false alarm here.
  setMaxListeners(0, stopController.signal);
  const phaseTwo = new PhaseTwoDriver({
    log,
    participants,
    config,
    crash,
    logger,
    observer,
    stopSignal: stopController.signal,
  });
  const resolver: ResolverDeps = {
    log,
    participants,
    config,
    logger,
    phaseTwo,
    isLive: (txId) => live.has(txId),
    mayRecover: (snapshot) => ownership.mayRecover(snapshot),
    beganUnderThisLease: (snapshot) => ownership.token !== undefined && ownerOf(snapshot) === ownership.token,
    decide: (txId, branches, source, reason) => decideAbort(log, txId, branches, source, reason),
    decideCommitted: (txId, branches) => log.decide({ txId, at: Date.now(), outcome: 'commit', source: 'recovery', branches }),
  };
  const sweeper = new Sweeper({ ...resolver, recoverExpired: () => recover(resolver, { onlyExpired: true, waitMs: 0 }) });
  const ctx: EngineContext = {
    config,
    log,
    participants,
    crash,
    logger,
    observer,
    ownership,
    tracer,
    live,
    deadlines: new DeadlineQueue<LiveTransaction>((tx) => onExpired(ctx, tx)),
    strings: new StringPool(),
    stopController,
    phaseTwo,
    sweeper,
    resolver,
    state: 'new',
  };
  return ctx;
}

/** Decides abort through the register; resolves with the winner (which may be a commit). */
export function decideAbort(log: DecisionLog, txId: string, branches: BranchInfo[], source: DecisionSource, reason?: AbortReason): Promise<DecisionRecord> {
  return log.decide({ txId, at: Date.now(), outcome: 'abort', source, branches, ...(reason ? { reason } : {}) });
}
