import type { Server } from 'node:http';
import { Pool } from 'pg';
import pino from 'pino';
import { CrashPoints } from '../engine/crash-points';
import { ParticipantRegistry } from '../engine/participant-registry';
import { TransactionEngine } from '../engine/transaction-engine';
import { errorMessage } from '../errors';
import { FileDecisionLog } from '../log/file/file-decision-log';
import { PostgresParticipant } from '../participants/postgres/postgres-participant';
import { createApp } from './app';
import { CoordinatorMetrics } from './metrics';
import type { ServiceConfig } from './service-config';

export interface RunningService {
  engine: TransactionEngine;
  server: Server;
  /** The port actually bound (config.port 0 picks a free one). */
  port: number;
  /** Graceful: stop accepting, let decisions in flight finish, flush and close the log. */
  close(): Promise<void>;
}

/** Starts `twopc serve`: HTTP first (so /healthz answers and /readyz says "not yet"), then recovery. */
export async function startService(config: ServiceConfig): Promise<RunningService> {
  const logger = pino({ level: config.logLevel, base: { service: 'twopc' } });
  const pools: Pool[] = [];
  const participants: PostgresParticipant[] = [];
  for (const [name, connectionString] of Object.entries(config.databases)) {
    const pool = new Pool({ connectionString, max: 10 });
    // An idle client's connection dying must not crash the coordinator; the next use reports it.
    pool.on('error', (e) => logger.warn({ participant: name, err: errorMessage(e) }, 'idle participant connection lost'));
    pools.push(pool);
    participants.push(new PostgresParticipant({ name, pool }));
  }
  const closePools = async () => {
    await Promise.allSettled(participants.map((p) => p.close()));
    await Promise.allSettled(pools.map((p) => p.end()));
  };
  try {
    await Promise.all(participants.map((p) => p.start()));
  } catch (e) {
    await closePools();
    throw e;
  }
  let engine: TransactionEngine | undefined;
  const metrics = new CoordinatorMetrics(() => engine?.inDoubtCount ?? 0);
  engine = new TransactionEngine({
    log: new FileDecisionLog({ dir: config.dataDir }),
    participants: new ParticipantRegistry(participants),
    config: config.engine,
    crash: CrashPoints.fromEnv(),
    logger,
    observer: metrics.observer,
  });
  const app = createApp({ engine, metrics });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  try {
    const report = await engine.start();
    logger.info({ port, dataDir: config.dataDir, databases: Object.keys(config.databases), recovery: report.recovery }, 'twopc coordinator ready');
  } catch (e) {
    server.close();
    await closePools();
    throw e;
  }
  const running = engine;
  return {
    engine: running,
    server,
    port,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await running.stop();
      await closePools();
      logger.info('twopc coordinator stopped');
    },
  };
}
