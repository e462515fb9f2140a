import path from 'node:path';
import { z } from 'zod';
import { TwopcError } from '../../engine/ports/protocol';
import { nodeLogFs, type LogFs } from './log-fs';

/** Options of {@link FileDecisionLog}. Only `dir` is required. */
export interface FileDecisionLogOptions {
  /** Directory of the log; created if missing. One process at a time may open it. */
  dir: string;
  /** A segment is sealed and a new one started once it would grow past this. Default 8 MiB; at least 4096. */
  segmentBytes?: number;
  /** Completed transactions are kept (for `get` / `history`; at least their outcome record) this long before compaction may forget them. Default 10 minutes. */
  completedRetentionMs?: number;
  /**
   * At most this many completed transactions are kept in full (every record,
   * for `history`): every kept transaction lives in memory, so a busy
   * coordinator must not keep retention-many minutes of full histories. Past
   * it, compaction reduces the oldest to their outcome record (how they
   * ended, when), which is kept until `completedRetentionMs` is over: a status
   * read or a retried commit gets its answer for the whole retention period.
   * Default 1,000 (about 3 MiB of full histories; a held outcome costs about 35 bytes).
   */
  maxRetainedCompleted?: number;
  /** Compact in the background when sealed segments accumulate, so disk use follows in-flight work. Default true. */
  autoCompact?: boolean;
  /**
   * With autoCompact, also compact this often when anything was written since
   * the last compaction or a retention ended, so an idle log gives memory and
   * disk back. Default 30,000; 0 turns the timer off.
   */
  compactIntervalMs?: number;
  /** Share one fdatasync among concurrent forced records. Default true; false writes and syncs each record alone (for measurement). */
  groupCommit?: boolean;
  /** The file-system seam; defaults to node's `fs`. Tests pass one that fails on cue. */
  fs?: LogFs;
  /** Clock for retention decisions; defaults to `Date.now`. */
  now?: () => number;
  /** Told about failures of background compaction (the log itself stays usable). Default: ignored. */
  onBackgroundError?: (error: unknown) => void;
}

/** Options after validation and defaults, frozen. */
export interface ResolvedFileLogOptions {
  readonly dir: string;
  readonly segmentBytes: number;
  readonly completedRetentionMs: number;
  readonly maxRetainedCompleted: number;
  readonly autoCompact: boolean;
  readonly compactIntervalMs: number;
  readonly groupCommit: boolean;
  readonly fs: LogFs;
  readonly now: () => number;
  readonly onBackgroundError: (error: unknown) => void;
}

export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
export const DEFAULT_COMPLETED_RETENTION_MS = 10 * 60 * 1000;
export const DEFAULT_MAX_RETAINED_COMPLETED = 1_000;
export const DEFAULT_COMPACT_INTERVAL_MS = 30_000;

const FS_METHODS = ['mkdir', 'readdir', 'readFile', 'stat', 'open', 'read', 'write', 'fdatasync', 'fsync', 'fstat', 'ftruncate', 'close', 'rename', 'link', 'unlink'] as const;

const fn = (field: string) => z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', { message: `${field} must be a function` });

const schema = z.strictObject({
  dir: z.string({ error: 'dir must be a string' }).min(1, 'dir must be a non-empty path'),
  segmentBytes: z
    .number({ error: 'segmentBytes must be a number' })
    .int('segmentBytes must be an integer')
    .min(4096, 'segmentBytes must be >= 4096')
    .max(1024 * 1024 * 1024, 'segmentBytes must be <= 1 GiB')
    .default(DEFAULT_SEGMENT_BYTES),
  completedRetentionMs: z
    .number({ error: 'completedRetentionMs must be a number' })
    .int('completedRetentionMs must be an integer')
    .min(0, 'completedRetentionMs must be >= 0')
    .default(DEFAULT_COMPLETED_RETENTION_MS),
  maxRetainedCompleted: z
    .number({ error: 'maxRetainedCompleted must be a number' })
    .int('maxRetainedCompleted must be an integer')
    .min(0, 'maxRetainedCompleted must be >= 0')
    .default(DEFAULT_MAX_RETAINED_COMPLETED),
  autoCompact: z.boolean({ error: 'autoCompact must be a boolean' }).default(true),
  compactIntervalMs: z
    .number({ error: 'compactIntervalMs must be a number' })
    .int('compactIntervalMs must be an integer')
    .min(0, 'compactIntervalMs must be >= 0')
    .default(DEFAULT_COMPACT_INTERVAL_MS),
  groupCommit: z.boolean({ error: 'groupCommit must be a boolean' }).default(true),
  fs: z
    .custom<LogFs>((v) => typeof v === 'object' && v !== null && FS_METHODS.every((m) => typeof (v as Record<string, unknown>)[m] === 'function'), {
      message: `fs must be an object with the methods ${FS_METHODS.join(', ')}`,
    })
    .optional(),
  now: fn('now').optional(),
  onBackgroundError: fn('onBackgroundError').optional(),
});

/** Validates once, with messages that name the field; throws `invalid-config`. */
export function resolveFileLogOptions(options: FileDecisionLogOptions): ResolvedFileLogOptions {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.') || 'options';
    const message = issue.code === 'unrecognized_keys' ? `unknown option(s) ${field}` : issue.path.length === 0 ? 'options must be an object' : issue.message;
    throw new TwopcError('invalid-config', `file decision log: ${message}`, { field });
  }
  const o = parsed.data;
  return Object.freeze({
    dir: path.resolve(o.dir),
    segmentBytes: o.segmentBytes,
    completedRetentionMs: o.completedRetentionMs,
    maxRetainedCompleted: o.maxRetainedCompleted,
    autoCompact: o.autoCompact,
    compactIntervalMs: o.compactIntervalMs,
    groupCommit: o.groupCommit,
    fs: o.fs ?? nodeLogFs(),
    now: (o.now as (() => number) | undefined) ?? Date.now,
    onBackgroundError: (o.onBackgroundError as ((error: unknown) => void) | undefined) ?? (() => undefined),
  });
}
