import { Pool } from 'pg';
import { PostgresParticipant } from '../participants/postgres/postgres-participant';
import { ParticipantRegistry } from '../engine/participant-registry';
import type { Participant } from '../engine/ports/participant';
import { HttpParticipants } from '../participants/http/http-participants';
import { MarkerPruning } from '../participants/postgres/marker-pruning';
import type { EngineLogger } from '../engine/ports/logger';
import type { ServiceConfig } from './service-config';

export interface ParticipantsFromConfigOptions {
  /** Connections per participant database. */
  poolSize: number;
  /** An idle connection of a pool died: it must not end the process (the next use reports it). */
  onIdleError(participant: string, e: Error): void;
  /** Run each database's `start()` (the marker table's migrations); when one fails, everything built is closed. */
  start: boolean;
  /** Wraps every participant the engine gets (see CoordinatorExtensions). */
  wrap?(participant: Participant): Participant;
  /** Prune the databases' `twopc_marker` every `config.pruneIntervalMs` once started (serve); failures are warnings to this logger. */
  markerPruning?: { logger: EngineLogger };
}

/** The participants of a config, as the engine reaches them, and how to let go of them. */
export interface ConfiguredParticipants {
  registry: ParticipantRegistry;
  /** Participant services by URL; absent without a participant secret (their branches are refused). */
  http?: HttpParticipants;
  /** Closes the HTTP clients, the participants and their pools. */
  close(): Promise<void>;
}

/**
 * The participant databases of `config.databases` (a pool and a
 * PostgresParticipant each) and, with a participant secret, the participant
 * services reached by the URL they enlist with.
 *
 * @example
 * const participants = await participantsFromConfig(config, { poolSize: 10, onIdleError: () => undefined, start: true });
 * const engine = new TransactionEngine({ log, participants: participants.registry, config: config.engine });
 */
export async function participantsFromConfig(config: ServiceConfig, o: ParticipantsFromConfigOptions): Promise<ConfiguredParticipants> {
  const wrap = o.wrap ?? ((p: Participant) => p);
  const pools: Pool[] = [];
  const postgres: PostgresParticipant[] = [];
  for (const [name, connectionString] of Object.entries(config.databases)) {
    const pool = new Pool({ connectionString, max: o.poolSize });
    pool.on('error', (e) => o.onIdleError(name, e));
    pools.push(pool);
    postgres.push(new PostgresParticipant({ name, pool, commitProof: config.commitProof, markerRetentionMs: config.markerRetentionMs }));
  }
  const http = config.participantSecret ? new HttpParticipants({ ...config.participantCalls, secret: config.participantSecret }) : undefined;
  const pruning = o.markerPruning ? new MarkerPruning({ databases: postgres, intervalMs: config.pruneIntervalMs, logger: o.markerPruning.logger }) : undefined;
  const close = async () => {
    // First: a pass in progress holds a connection of the pools ended below.
    await pruning?.stop();
    await http?.close();
    await Promise.allSettled(postgres.map((p) => p.close()));
    await Promise.allSettled(pools.map((p) => p.end()));
  };
  if (o.start) {
    try {
      await Promise.all(postgres.map((p) => p.start()));
    } catch (e) {
      await close();
      throw e;
    }
    // After the migrations: the horizon table pruning writes to exists only then.
    pruning?.start();
  }
  const registry = new ParticipantRegistry(postgres.map(wrap), http ? (name, url) => wrap(http.forUrl(name, url)) : undefined);
  return { registry, ...(http ? { http } : {}), close };
}

/** No participant at all: an engine that only reads and writes its log. */
export function noParticipants(): ConfiguredParticipants {
  return { registry: new ParticipantRegistry(), close: async () => undefined };
}
