import { createServer, type Server } from 'node:http';
import os from 'node:os';
import { servesRequests } from '../cluster/lease-kind';
import pino from 'pino';
import { version } from '../../package.json';
import { assembleCoordinator, decisionLogFromConfig, type AssembledCoordinator } from '../assembly/assemble-coordinator';
import { CrashPoints } from '../engine/crash-points';
import type { TransactionEngine } from '../engine/transaction-engine';
import { errorMessage } from '../engine/ports/protocol';
import { operatorsOf, resolveApiAuth } from './api-tokens';
import { admitted, AdmissionQueue } from './admission';
import { createApp } from './app';
import { carriedSignatureCheck } from './carried-routes';
import { applyHeapGrowingPercent, fullCollection, IdleCollector, youngGenerationCap } from './heap-control';
import { IdempotencyStore } from './idempotency';
import { OwnerForwarder } from './owner-forwarder';
import { CoordinatorMetrics } from './metrics';
import type { CoordinatorExtensions } from '../assembly/extensions';
import type { ServiceConfig } from '../assembly/service-config';
import type { EngineLogger } from '../engine/ports/logger';

export interface RunningService {
  engine: TransactionEngine;
  server: Server;
  /** The port actually bound (config.port 0 picks a free one). */
  port: number;
  /** The tokens generated for this run when no API token was configured (loopback listener only). */
  generatedTokens?: { apiToken: string; adminToken?: string };
  /** Graceful: stop accepting, let requests and decisions in flight finish, flush and close the log. */
  close(): Promise<void>;
}

/** What the host that starts the service adds to it (the chaos harness: its faults). */
export interface ServiceHooks {
  /** Called once the service's logger exists, before anything is opened. */
  extensions?(logger: EngineLogger): CoordinatorExtensions;
}

/** Starts `twopc serve`: HTTP first (so /healthz answers and /readyz says "not yet"), then recovery. */
export async function startService(config: ServiceConfig, hooks: ServiceHooks = {}): Promise<RunningService> {
  const auth = resolveApiAuth(config);
  const operators = operatorsOf(config, auth);
  const logger = pino({ level: config.logLevel, base: { service: 'twopc' } });
  const extensions = hooks.extensions?.(logger) ?? {};
  if (auth.insecure) logger.warn('API authentication is OFF (insecure): anyone who can reach the port can commit and abort transactions');
  if (auth.generated) {
    const admin = auth.generated.adminToken ? '; adminToken opens /v1/admin and `twopc <command> --url` (TWOPC_ADMIN_TOKEN)' : '';
    logger.warn(auth.generated, `no API token configured (TWOPC_API_TOKEN): generated tokens for this run (loopback listener only): apiToken for /v1 ("Authorization: Bearer <apiToken>")${admin}`);
  }
  const log = decisionLogFromConfig(config, { onWarning: (message) => logger.warn(message), ...(extensions.logFs ? { fs: extensions.logFs } : {}) });
  applyHeapGrowingPercent(config.memory.heapGrowingPercent);
  const admission = new AdmissionQueue({ maxInProgress: config.http.maxRequestsInProgress, maxQueued: config.http.maxQueuedRequests, slice: config.http.requestsPerTurn });
  // Set once assembled; the metrics and the membership's callbacks read it lazily.
  let coordinator: AssembledCoordinator | undefined;
  const engineOf = () => coordinator?.engine;
  const metrics = new CoordinatorMetrics({
    inDoubt: () => engineOf()?.inDoubtCount ?? 0,
    live: () => engineOf()?.liveCount ?? 0,
    withHazards: async () => engineOf()?.admin.hazardousCount() ?? 0,
    ...(log.leases ? { holdsLease: () => coordinator?.membership?.holdsLease ?? false } : {}),
    ready: () => engineOf()?.ready ?? false,
    logFailed: () => engineOf()?.logFailure !== undefined,
    // Cheap whatever the load (no listing of every live transaction): a scrape must not stall the event loop.
    oldestInDoubtSince: async () => engineOf()?.admin.oldestInDoubtSince(),
    ...(log.held ? { held: () => log.held?.() } : {}),
    requests: () => ({ inProgress: admission.running, queued: admission.queued }),
  });
  // The port is known once listening (config.port 0 picks one); the lease is registered after that.
  let boundPort = config.port;
  coordinator = await assembleCoordinator({
    config,
    role: 'serve',
    log,
    participants: true,
    crash: CrashPoints.fromEnv(),
    logger,
    observer: metrics.observer,
    extensions,
    // Several instances share a PostgreSQL or Redis log: each holds a lease and owns the transactions it begins.
    membership: {
      identity: () => instanceIdentity(config, boundPort),
      // Only other serve instances' (and operators' CLI runs'): an in-process coordinator's transactions
      // are on databases this instance may not have, and they are left to the processes of its group.
      mayTakeOver: (lease) => servesRequests(lease.url),
      onTakeover: (tokens) => {
        metrics.cluster.tookOver(tokens.length);
        engineOf()?.admin.recover().catch((e) => logger.error({ err: errorMessage(e) }, 'recovery of taken-over transactions failed; the sweep tries again'));
      },
      onFenced: () => {
        metrics.cluster.fenced();
        engineOf()?.handOver();
      },
    },
  });
  const { engine, membership, httpParticipants } = coordinator;
  if (!httpParticipants) logger.info('no participant secret (TWOPC_PARTICIPANT_SECRET): branches of participant services (with a url) are refused');
  const forwarder = membership
    ? new OwnerForwarder({ engine, log, membership, logger, observer: metrics.cluster, timeoutMs: config.engine.commitWaitMs + config.participantCalls.prepareTimeoutMs + 5_000 })
    : undefined;
  const app = createApp({
    engine,
    metrics,
    logger,
    apiTokens: auth.tokens,
    idempotency: new IdempotencyStore(config.idempotency),
    bodyLimitBytes: config.http.bodyLimitBytes,
    participantUrls: {
      enabled: httpParticipants !== undefined,
      allowList: config.participantUrlAllowList,
      ...(httpParticipants ? { accepts: (url: string, accepts: readonly string[] | undefined) => httpParticipants.noteAccepts(url, accepts) } : {}),
      ...(config.participantSecret ? { registrationSigned: carriedSignatureCheck(config.participantSecret) } : {}),
    },
    version,
    operators,
    // `log verify` reads the file log's directory; other stores have none.
    ...(config.log ? {} : { logDir: config.dataDir }),
    ...(forwarder ? { forwarder } : {}),
    ...(membership ? { membership } : {}),
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(admitted(app, admission));
    s.keepAliveTimeout = config.http.keepAliveTimeoutMs;
    // Node ends a request whose headers take longer than this; it must exceed the keep-alive wait.
    s.headersTimeout = Math.max(s.headersTimeout, config.http.keepAliveTimeoutMs + 1_000);
    s.once('error', reject);
    s.listen(config.port, config.host, config.http.listenBacklog, () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  boundPort = port;
  try {
    const report = await engine.start();
    logger.info({ port, host: config.host, dataDir: config.dataDir, databases: Object.keys(config.databases), recovery: report.recovery }, 'twopc coordinator ready');
  } catch (e) {
    server.close();
    await forwarder?.close();
    await coordinator.closeParticipants();
    throw e;
  }
  const running = coordinator;
  const idleCollector = config.memory.collectWhenIdleMs > 0 ? new IdleCollector({ idleMs: config.memory.collectWhenIdleMs, started: () => admission.started, collect: fullCollection(), prepare: () => engine.admin.compactLogIfDue(), footprint: () => process.memoryUsage.rss(), youngGeneration: youngGenerationCap() }) : undefined;
  if (idleCollector) admission.onStart = () => idleCollector.working();
  let closing: Promise<void> | undefined;
  return {
    engine,
    server,
    port,
    ...(auth.generated ? { generatedTokens: auth.generated } : {}),
    close() {
      closing ??= (async () => {
        logger.info('twopc coordinator stopping: no new connections; finishing requests in flight');
        idleCollector?.stop();
        await closeServer(server, config.http.shutdownTimeoutMs);
        // Commits in flight reach their decision; phase-2 retries stop (recovery resumes them); the log is flushed and closed.
        await running.engine.stop();
        await forwarder?.close();
        await running.closeParticipants();
        logger.info('twopc coordinator stopped');
      })();
      return closing;
    },
  };
}

/** Stops accepting connections and waits for requests in flight, cutting the rest after `timeoutMs`. */
async function closeServer(server: Server, timeoutMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // A kept-alive connection whose request finishes after close() began would idle until the
  // client's keep-alive ends; close connections as soon as they go idle.
  const idle = setInterval(() => server.closeIdleConnections(), 50);
  const deadline = setTimeout(() => server.closeAllConnections(), timeoutMs);
  deadline.unref();
  server.closeIdleConnections();
  await closed;
  clearInterval(idle);
  clearTimeout(deadline);
}

/** This instance's name and the URL other instances relay to: configured, or the host name and bound port. */
function instanceIdentity(config: ServiceConfig, port: number): { name: string; url: string } {
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const host = wildcard ? os.hostname() : config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    name: config.instance.name ?? `${os.hostname()}:${port}`,
    url: (config.instance.url ?? `http://${host}:${port}`).replace(/\/$/, ''),
  };
}
