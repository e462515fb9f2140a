import { Membership } from '../cluster/membership';
import type { CrashPoints } from '../engine/crash-points';
import type { EngineConfig } from '../engine/engine-config';
import type { EngineObserver } from '../engine/engine-observer';
import type { DecisionLog } from '../engine/ports/decision-log';
import type { InstanceLease } from '../engine/ports/lease-store';
import { silentLogger, type EngineLogger } from '../engine/ports/logger';
import { errorMessage } from '../engine/ports/protocol';
import { TransactionEngine } from '../engine/transaction-engine';
import { createDecisionLog } from '../log/create-decision-log';
import { FileDecisionLog } from '../log/file/file-decision-log';
import { nodeLogFs, type LogFs } from '../log/file/log-fs';
import type { HttpParticipants } from '../participants/http/http-participants';
import type { CoordinatorExtensions } from './extensions';
import { noParticipants, participantsFromConfig, type ConfiguredParticipants } from './participants-from-config';
import type { ServiceConfig } from './service-config';
import { otelTracer } from '../tracing/otel-tracer';

export interface AssemblyOptions {
  config: ServiceConfig;
  /**
   * - `serve`: a running coordinator. Its participant databases are migrated
   *   (`start()`), a lost idle connection is logged, the lease is registered
   *   when the engine starts.
   * - `offline`: the engine an operator command drives on a stopped
   *   coordinator's log, never started (no recovery, no sweeps unless the
   *   command runs them). Fewer connections, nothing migrated; on a shared log
   *   the lease is taken here, at once.
   */
  role: 'serve' | 'offline';
  /** The decision log (see decisionLogFromConfig); the engine opens it (offline: its caller did) and closes it. */
  log: DecisionLog;
  /** Build the configured participants (offline: only for commands that end branches or list prepared ones). */
  participants: boolean;
  /** Default: `config.engine`. */
  engineConfig?: EngineConfig;
  logger?: EngineLogger;
  crash?: CrashPoints;
  observer?: EngineObserver;
  /**
   * On a shared log (one with leases): this process joins the instances under
   * this identity. Without it, or on a file log, there is no membership (every
   * transaction of the log is this process's).
   */
  membership?: {
    identity(): { name: string; url: string };
    /** Expired leases (dead instances) were taken over: their transactions are this process's to recover now. */
    onTakeover?(tokens: number[]): void;
    /** This process lost its lease to another instance. */
    onFenced?(): void;
    /** Which expired leases this process may take over (default: any; see Membership). */
    mayTakeOver?(lease: InstanceLease): boolean;
  };
  extensions?: CoordinatorExtensions;
}

/** A coordinator built from its config: the engine on its log, participants and membership. */
export interface AssembledCoordinator {
  engine: TransactionEngine;
  log: DecisionLog;
  membership?: Membership;
  httpParticipants?: HttpParticipants;
  /** Closes the participants and their pools (the engine is left as it is: one that failed to start). */
  closeParticipants(): Promise<void>;
  /** Stops the engine (phase-2 retries end, the log is flushed and closed, the lease given up), then closes the participants. */
  close(): Promise<void>;
}

// Connections per participant database: a CLI run needs few, and must not crowd out the applications.
const POOL_SIZE = { serve: 10, offline: 8 } as const;

/**
 * One coordinator from its config, for `twopc serve` and the offline
 * operator commands alike: the participants, the membership on a shared log,
 * and the engine over them.
 *
 * @example
 * const log = decisionLogFromConfig(config, { onWarning: (m) => logger.warn(m) });
 * const coordinator = await assembleCoordinator({ config, role: 'serve', log, participants: true, logger });
 * await coordinator.engine.start();
 */
export async function assembleCoordinator(o: AssemblyOptions): Promise<AssembledCoordinator> {
  const { config, log } = o;
  const logger = o.logger ?? silentLogger;
  const membership =
    log.leases && o.membership
      ? new Membership({
          leases: log.leases,
          leaseMs: config.instance.leaseMs,
          unownedAfterMs: config.engine.maxTimeoutMs + config.engine.sweepGraceMs,
          logger,
          identity: o.membership.identity,
          ...(o.membership.onTakeover ? { onTakeover: o.membership.onTakeover } : {}),
          ...(o.membership.onFenced ? { onFenced: o.membership.onFenced } : {}),
          ...(o.membership.mayTakeOver ? { mayTakeOver: o.membership.mayTakeOver } : {}),
        })
      : undefined;
  // Offline, nothing starts the engine: the lease is taken now, before any participant is reached.
  if (o.role === 'offline') await membership?.start();
  const participants: ConfiguredParticipants = o.participants
    ? await participantsFromConfig(config, {
        poolSize: POOL_SIZE[o.role],
        // An idle client's connection dying must not crash the coordinator (or end the CLI); the next use reports it.
        onIdleError: o.role === 'serve' ? (participant, e) => logger.warn({ participant, err: errorMessage(e) }, 'idle participant connection lost') : () => undefined,
        // Serve migrates the marker tables; a failure there closes what was built and ends the start.
        start: o.role === 'serve',
        // A running coordinator prunes its databases' markers as participant services do theirs; a CLI run does not.
        ...(o.role === 'serve' ? { markerPruning: { logger } } : {}),
        ...(o.extensions?.wrapParticipant ? { wrap: o.extensions.wrapParticipant } : {}),
      })
    : noParticipants();
  const engine = new TransactionEngine({
    log,
    ...(membership ? { ownership: membership } : {}),
    participants: participants.registry,
    config: o.engineConfig ?? config.engine,
    ...(o.crash ? { crash: o.crash } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.observer ? { observer: o.observer } : {}),
    tracer: otelTracer,
  });
  return {
    engine,
    log,
    ...(membership ? { membership } : {}),
    ...(participants.http ? { httpParticipants: participants.http } : {}),
    closeParticipants: () => participants.close(),
    async close() {
      await engine.stop();
      await participants.close();
    },
  };
}

/**
 * The decision log a config names: `log` (file:, postgres://, redis://) or,
 * by default, the file log in `dataDir`. Not opened.
 */
export function decisionLogFromConfig(config: ServiceConfig, o: { onWarning(message: string): void; fs?: LogFs; retentionMs?: number }): DecisionLog {
  const retention = o.retentionMs === undefined ? {} : { completedRetentionMs: o.retentionMs };
  return config.log
    ? createDecisionLog(config.log, { field: 'TWOPC_LOG', allowVolatile: config.allowVolatile, onWarning: o.onWarning, ...retention })
    : new FileDecisionLog({ dir: config.dataDir, fs: o.fs ?? nodeLogFs(), ...retention });
}
