import { z } from 'zod';
import { TwopcError } from '../../engine/ports/protocol';
import { defaultWarning } from '../log-errors';
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_RETRY } from './retry-write';

/** An integer option in [min, max], with messages that name the field. */
export function intOption(field: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return z
    .number({ error: `${field} must be a number` })
    .int(`${field} must be an integer`)
    .min(min, `${field} must be >= ${min}`)
    .max(max, `${field} must be <= ${max}`);
}

/** A function option. */
export function fnOption(field: string) {
  return z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', { message: `${field} must be a function` });
}

/** Options the PostgreSQL and Redis stores share; each store's own type says what they mean on its server. */
export interface SharedStoreOptions {
  /** Start even though a decision the server acknowledges could be lost, with a loud warning. Default false. */
  allowVolatile?: boolean;
  /** Share one round trip and one commit among concurrent writes. Default true; false sends each write alone, one at a time (for measurement). */
  groupCommit?: boolean;
  /** Most writes in one batch. Default 512. */
  maxBatch?: number;
  /** Completed transactions are kept (for `get` / `history`) this long before compaction may forget them. Default 10 minutes. */
  completedRetentionMs?: number;
  /** Clock for retention decisions; defaults to `Date.now`. */
  now?: () => number;
  /** How long a write or read keeps retrying through a lost connection before failing with `log-unavailable`. Default 15 s. */
  retryDeadlineMs?: number;
  /** How long one attempt at a call may go unanswered before it fails like a lost connection (retried until `retryDeadlineMs`). Default 5 s. */
  callTimeoutMs?: number;
  /** Told about the allowVolatile warning. Default: `process.emitWarning` (stderr). */
  onWarning?: (message: string) => void;
}

/** The shared options after validation and defaults. */
export interface ResolvedSharedStoreOptions {
  readonly allowVolatile: boolean;
  readonly groupCommit: boolean;
  readonly maxBatch: number;
  readonly completedRetentionMs: number;
  readonly now: () => number;
  readonly retryDeadlineMs: number;
  readonly callTimeoutMs: number;
  readonly onWarning: (message: string) => void;
}

/** The zod fields of the shared options, spread into each store's schema. */
export const sharedStoreOptionShape = {
  allowVolatile: z.boolean({ error: 'allowVolatile must be a boolean' }).default(false),
  groupCommit: z.boolean({ error: 'groupCommit must be a boolean' }).default(true),
  maxBatch: intOption('maxBatch', 1, 10_000).default(512),
  completedRetentionMs: intOption('completedRetentionMs', 0).default(10 * 60 * 1000),
  now: fnOption('now').optional(),
  retryDeadlineMs: intOption('retryDeadlineMs', 0).default(DEFAULT_RETRY.deadlineMs),
  callTimeoutMs: intOption('callTimeoutMs', 10, 3_600_000).default(DEFAULT_CALL_TIMEOUT_MS),
  onWarning: fnOption('onWarning').optional(),
};

/** The defaults zod cannot give (functions): the clock and where warnings go. */
export function sharedStoreDefaults(o: { now?: unknown; onWarning?: unknown }): Pick<ResolvedSharedStoreOptions, 'now' | 'onWarning'> {
  return {
    now: (o.now as (() => number) | undefined) ?? Date.now,
    onWarning: (o.onWarning as ((message: string) => void) | undefined) ?? defaultWarning,
  };
}

/**
 * Parses a store's options once; the first problem becomes `invalid-config`
 * naming the field (`<store> decision log: <message>`), as the file store's do.
 */
export function parseStoreOptions<S extends z.ZodType>(schema: S, options: unknown, store: string): z.output<S> {
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.') || 'options';
  const message = issue.code === 'unrecognized_keys' ? `unknown option(s) ${field}` : issue.path.length === 0 ? 'options must be an object' : issue.message;
  throw new TwopcError('invalid-config', `${store} decision log: ${message}`, { field });
}
