import type { Server } from 'node:http';
import os from 'node:os';
import { servesRequests } from '../cluster/lease-kind';
import { Membership } from '../cluster/membership';
import { Pool } from 'pg';
import pino from 'pino';
import { version } from '../../package.json';
import { CrashPoints } from '../engine/crash-points';
import { ParticipantRegistry } from '../engine/participant-registry';
import { TransactionEngine } from '../engine/transaction-engine';
import { errorMessage } from '../errors';
import { createDecisionLog } from '../log/create-decision-log';
import type { DecisionLog } from '../log/decision-log';
import { FileDecisionLog } from '../log/file/file-decision-log';
import { nodeLogFs } from '../log/file/log-fs';
import { HttpParticipants } from '../participants/http/http-participants';
import { PostgresParticipant } from '../participants/postgres/postgres-participant';
import { logFsFor, testSwitchesFromEnv } from '../testing/test-switches';
import { resolveApiAuth } from './api-tokens';
import { createApp } from './app';
import { IdempotencyStore } from './idempotency';
import { OwnerForwarder } from './owner-forwarder';
import { CoordinatorMetrics } from './metrics';
import type { ServiceConfig } from './service-config';

export interface RunningService {
  engine: TransactionEngine;
  server: Server;
  /** The port actually bound (config.port 0 picks a free one). */
  port: number;
  /** The API token generated for this run when none was configured (loopback listener only). */
  generatedApiToken?: string;
  /** Graceful: stop accepting, let requests and decisions in flight finish, flush and close the log. */
  close(): Promise<void>;
}

/** Starts `twopc serve`: HTTP first (so /healthz answers and /readyz says "not yet"), then recovery. */
export async function startService(config: ServiceConfig): Promise<RunningService> {
  const auth = resolveApiAuth(config);
  const logger = pino({ level: config.logLevel, base: { service: 'twopc' } });
  // Test-only fault switches (chaos harness); refused unless NODE_ENV=test, and logged loudly.
  const switches = testSwitchesFromEnv(process.env, (msg, details) => logger.error(details, msg));
  if (auth.insecure) logger.warn('API authentication is OFF (insecure): anyone who can reach the port can commit and abort transactions');
  if (auth.generated) {
    logger.warn({ apiToken: auth.generated }, 'no API token configured (TWOPC_API_TOKEN): generated one for this run; send it as "Authorization: Bearer <token>"');
  }
  const pools: Pool[] = [];
  const participants: PostgresParticipant[] = [];
  for (const [name, connectionString] of Object.entries(config.databases)) {
    const pool = new Pool({ connectionString, max: 10 });
    // An idle client's connection dying must not crash the coordinator; the next use reports it.
    pool.on('error', (e) => logger.warn({ participant: name, err: errorMessage(e) }, 'idle participant connection lost'));
    pools.push(pool);
    participants.push(new PostgresParticipant({ name, pool }));
  }
  const httpParticipants = config.participantSecret ? new HttpParticipants({ ...config.participantCalls, secret: config.participantSecret }) : undefined;
  if (!httpParticipants) logger.info('no participant secret (TWOPC_PARTICIPANT_SECRET): branches of participant services (with a url) are refused');
  const closeParticipants = async () => {
    await httpParticipants?.close();
    await Promise.allSettled(participants.map((p) => p.close()));
    await Promise.allSettled(pools.map((p) => p.end()));
  };
  try {
    await Promise.all(participants.map((p) => p.start()));
  } catch (e) {
    await closeParticipants();
    throw e;
  }
  let engine: TransactionEngine | undefined;
  const log: DecisionLog = config.log
    ? createDecisionLog(config.log, { field: 'TWOPC_LOG', allowVolatile: config.allowVolatile, onWarning: (message) => logger.warn(message) })
    : new FileDecisionLog({ dir: config.dataDir, fs: logFsFor(switches, nodeLogFs(), (msg) => logger.error(msg)) });
  const metrics = new CoordinatorMetrics({
    inDoubt: () => engine?.inDoubtCount ?? 0,
    live: () => engine?.liveCount ?? 0,
    withHazards: async () => (engine ? engine.hazardousCount() : 0),
    ...(log.leases ? { holdsLease: () => membership?.holdsLease ?? false } : {}),
    ready: () => engine?.ready ?? false,
    logFailed: () => engine?.logFailure !== undefined,
    oldestInDoubtSince: async () => {
      // The listing is oldest first; it reads the log, so only a scrape asks, never a request.
      const oldest = engine ? (await engine.list({ state: 'in-doubt', limit: 1 })).transactions[0] : undefined;
      return oldest ? Date.parse(oldest.createdAt) : undefined;
    },
  });
  // The port is known once listening (config.port 0 picks one); the lease is registered after that.
  let boundPort = config.port;
  // Several instances share a PostgreSQL or Redis log: each holds a lease and owns the transactions it begins.
  const membership = log.leases
    ? new Membership({
        leases: log.leases,
        leaseMs: config.instance.leaseMs,
        unownedAfterMs: config.engine.maxTimeoutMs + config.engine.sweepGraceMs,
        logger,
        identity: () => instanceIdentity(config, boundPort),
        // Only other serve instances' (and operators' CLI runs'): an in-process coordinator's transactions
        // are on databases this instance may not have, and they are left to the processes of its group.
        mayTakeOver: (lease) => servesRequests(lease.url),
        onTakeover: (tokens) => {
          metrics.cluster.tookOver(tokens.length);
          engine?.recover().catch((e) => logger.error({ err: errorMessage(e) }, 'recovery of taken-over transactions failed; the sweep tries again'));
        },
        onFenced: () => {
          metrics.cluster.fenced();
          engine?.handOver();
        },
      })
    : undefined;
  engine = new TransactionEngine({
    log,
    ...(membership ? { ownership: membership } : {}),
    participants: new ParticipantRegistry(participants, httpParticipants?.forUrl),
    config: config.engine,
    crash: CrashPoints.fromEnv(),
    breaks: switches.breaks,
    logger,
    observer: metrics.observer,
  });
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
    participantUrls: { enabled: httpParticipants !== undefined, allowList: config.participantUrlAllowList },
    version,
    ...(config.adminToken === undefined ? {} : { adminToken: config.adminToken }),
    // `log verify` reads the file log's directory; other stores have none.
    ...(config.log ? {} : { logDir: config.dataDir }),
    ...(forwarder ? { forwarder } : {}),
    ...(membership ? { membership } : {}),
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
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
    await closeParticipants();
    throw e;
  }
  const running = engine;
  let closing: Promise<void> | undefined;
  return {
    engine: running,
    server,
    port,
    ...(auth.generated ? { generatedApiToken: auth.generated } : {}),
    close() {
      closing ??= (async () => {
        logger.info('twopc coordinator stopping: no new connections; finishing requests in flight');
        await closeServer(server, config.http.shutdownTimeoutMs);
        // Commits in flight reach their decision; phase-2 retries stop (recovery resumes them); the log is flushed and closed.
        await running.stop();
        await forwarder?.close();
        await closeParticipants();
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
