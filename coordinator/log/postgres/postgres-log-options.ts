import { z } from 'zod';
import { defaultWarning } from '../log-errors';
import { fnOption, intOption, parseStoreOptions } from '../shared-store/store-options';
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_RETRY } from '../shared-store/retry-write';
import { LOG_SCHEMA_PATTERN } from './postgres-log-sql';

/** Options of {@link PostgresDecisionLog}. Only `connectionString` is required. */
export interface PostgresDecisionLogOptions {
  /** `postgres://user:password@host:port/database`; the store opens its own pool on it. */
  connectionString: string;
  /** Schema of the log's tables; created (with its tables) by open() if missing. Default `twopc`. */
  schema?: string;
  /** Connections for decisions, reads and compaction (appends use one more, their own). Default 8. */
  poolSize?: number;
  /** Share one round trip and one commit among concurrent decisions. Default true; false sends each decision alone, one at a time (for measurement). */
  groupCommit?: boolean;
  /** Most writes in one batch. Default 512. */
  maxBatch?: number;
  /** Decision batches committing at once (each on its own connection). Default 2. */
  decisionBatchesInFlight?: number;
  /**
   * Start even though a decision this server acknowledges could be lost — it runs with fsync=off
   * (an OS crash), or standbys stream from it while synchronous_standby_names is empty (a
   * failover) — with a loud warning. Default false.
   */
  allowVolatile?: boolean;
  /** Completed transactions are kept (for `get` / `history`) this long before compaction may forget them. Default 10 minutes. */
  completedRetentionMs?: number;
  /** Clock for retention decisions; defaults to `Date.now`. */
  now?: () => number;
  /** How long a write or read keeps retrying through a lost connection before failing with `log-unavailable`. Default 15 s. */
  retryDeadlineMs?: number;
  /**
   * How long one attempt at a call may go unanswered (a connection, a statement, a lock wait):
   * past it the connection is closed and the attempt fails like a lost connection (retried
   * until `retryDeadlineMs`). So every call ends within `retryDeadlineMs` plus one attempt,
   * even when the network drops packets without resetting anything. Default 5 s.
   */
  callTimeoutMs?: number;
  /** Told about the allowVolatile warning. Default: `process.emitWarning` (stderr). */
  onWarning?: (message: string) => void;
}

/** Options after validation and defaults, frozen. */
export interface ResolvedPostgresLogOptions {
  readonly connectionString: string;
  readonly schema: string;
  readonly poolSize: number;
  readonly groupCommit: boolean;
  readonly maxBatch: number;
  readonly decisionBatchesInFlight: number;
  readonly allowVolatile: boolean;
  readonly completedRetentionMs: number;
  readonly now: () => number;
  readonly retryDeadlineMs: number;
  readonly callTimeoutMs: number;
  readonly onWarning: (message: string) => void;
}

const schema = z.strictObject({
  connectionString: z
    .string({ error: 'connectionString must be a string' })
    .regex(/^postgres(ql)?:\/\//, 'connectionString must start with postgres:// or postgresql://'),
  schema: z.string({ error: 'schema must be a string' }).regex(LOG_SCHEMA_PATTERN, `schema must match ${LOG_SCHEMA_PATTERN}`).default('twopc'),
  poolSize: intOption('poolSize', 1, 1000).default(8),
  groupCommit: z.boolean({ error: 'groupCommit must be a boolean' }).default(true),
  maxBatch: intOption('maxBatch', 1, 10_000).default(512),
  decisionBatchesInFlight: intOption('decisionBatchesInFlight', 1, 64).default(2),
  allowVolatile: z.boolean({ error: 'allowVolatile must be a boolean' }).default(false),
  completedRetentionMs: intOption('completedRetentionMs', 0).default(10 * 60 * 1000),
  now: fnOption('now').optional(),
  retryDeadlineMs: intOption('retryDeadlineMs', 0).default(DEFAULT_RETRY.deadlineMs),
  callTimeoutMs: intOption('callTimeoutMs', 10, 3_600_000).default(DEFAULT_CALL_TIMEOUT_MS),
  onWarning: fnOption('onWarning').optional(),
});

/** Validates once, with messages that name the field; throws `invalid-config`. */
export function resolvePostgresLogOptions(options: PostgresDecisionLogOptions): ResolvedPostgresLogOptions {
  const o = parseStoreOptions(schema, options, 'postgres');
  return Object.freeze({
    ...o,
    decisionBatchesInFlight: o.groupCommit ? o.decisionBatchesInFlight : 1,
    now: (o.now as (() => number) | undefined) ?? Date.now,
    onWarning: (o.onWarning as ((message: string) => void) | undefined) ?? defaultWarning,
  });
}
