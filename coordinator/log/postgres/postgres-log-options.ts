import { z } from 'zod';
import { intOption, parseStoreOptions, sharedStoreDefaults, sharedStoreOptionShape, type ResolvedSharedStoreOptions, type SharedStoreOptions } from '../shared-store/store-options';
import { LOG_SCHEMA_PATTERN } from './postgres-log-sql';

/** Options of {@link PostgresDecisionLog}. Only `connectionString` is required. */
export interface PostgresDecisionLogOptions extends SharedStoreOptions {
  /** `postgres://user:password@host:port/database`; the store opens its own pool on it. */
  connectionString: string;
  /** Schema of the log's tables; created (with its tables) by open() if missing. Default `twopc`. */
  schema?: string;
  /** Connections for decisions, reads and compaction (appends use one more, their own). Default 8. */
  poolSize?: number;
  /** Share one round trip and one commit among concurrent decisions. Default true; false sends each decision alone, one at a time (for measurement). */
  groupCommit?: boolean;
  /** Decision batches committing at once (each on its own connection). Default 2. */
  decisionBatchesInFlight?: number;
  /**
   * Start even though a decision this server acknowledges could be lost — it runs with fsync=off
   * (an OS crash), or standbys stream from it while synchronous_standby_names is empty (a
   * failover) — with a loud warning. Default false.
   */
  allowVolatile?: boolean;
  /**
   * How long one attempt at a call may go unanswered (a connection, a statement, a lock wait):
   * past it the connection is closed and the attempt fails like a lost connection (retried
   * until `retryDeadlineMs`). So every call ends within `retryDeadlineMs` plus one attempt,
   * even when the network drops packets without resetting anything. Default 5 s.
   */
  callTimeoutMs?: number;
}

/** Options after validation and defaults, frozen. */
export interface ResolvedPostgresLogOptions extends ResolvedSharedStoreOptions {
  readonly connectionString: string;
  readonly schema: string;
  readonly poolSize: number;
  readonly decisionBatchesInFlight: number;
}

const schema = z.strictObject({
  connectionString: z
    .string({ error: 'connectionString must be a string' })
    .regex(/^postgres(ql)?:\/\//, 'connectionString must start with postgres:// or postgresql://'),
  schema: z.string({ error: 'schema must be a string' }).regex(LOG_SCHEMA_PATTERN, `schema must match ${LOG_SCHEMA_PATTERN}`).default('twopc'),
  poolSize: intOption('poolSize', 1, 1000).default(8),
  decisionBatchesInFlight: intOption('decisionBatchesInFlight', 1, 64).default(2),
  ...sharedStoreOptionShape,
});

/** Validates once, with messages that name the field; throws `invalid-config`. */
export function resolvePostgresLogOptions(options: PostgresDecisionLogOptions): ResolvedPostgresLogOptions {
  const o = parseStoreOptions(schema, options, 'postgres');
  return Object.freeze({
    ...o,
    decisionBatchesInFlight: o.groupCommit ? o.decisionBatchesInFlight : 1,
    ...sharedStoreDefaults(o),
  });
}
