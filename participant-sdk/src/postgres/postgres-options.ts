import { z } from 'zod';
import { TwopcError } from '../errors';
import type { PostgresPool } from './postgres-pool';
import { SCHEMA_PATTERN } from './postgres-sql';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Default `markerRetentionMs`: a marker is pruned once its branch's commit is this old. */
export const DEFAULT_MARKER_RETENTION_MS = 7 * DAY_MS;

/**
 * The shortest `markerRetentionMs` accepted (1 h). A marker is a one-phase commit's only proof:
 * pruned while the coordinator may still ask, the commit reads as never made. No floor is long
 * enough for every outage, but one catches a retention given in seconds (604800 is 10 minutes).
 */
export const MIN_MARKER_RETENTION_MS = 60 * 60 * 1000;

/**
 * How a repeated COMMIT/ROLLBACK PREPARED that finds nothing (42704) learns
 * what the branch did. `marker`: a row inserted in the branch with its PREPARE
 * (visible = committed). `xid`: the branch's transaction id, read in PREPARE's
 * round trip with the cluster history it belongs to (system identifier and
 * timeline) and carried with the yes vote into the decision, asked of
 * `pg_xact_status` on that same history (no extra write per branch). `xid`
 * turns a lost COMMIT PREPARED answer into a heuristic hazard after a failover
 * to an asynchronous standby, a restore, or once vacuum truncated the commit
 * log past the xid; `marker` does not (docs/commit-proof.md). `xid` needs
 * every restore of the cluster to start a new timeline (archive recovery):
 * one started by crash recovery alone (a storage snapshot) reuses xids under
 * the same history, and a lost branch can then be acknowledged as committed.
 */
export const COMMIT_PROOFS = ['marker', 'xid'] as const;
export type CommitProof = (typeof COMMIT_PROOFS)[number];

/**
 * Options of {@link PostgresParticipant}.
 *
 * @example
 * new PostgresParticipant({ name: 'orders', pool: new Pool({ connectionString }) })
 */
export interface PostgresParticipantOptions {
  /** The participant's name in votes, errors and the decision log. */
  name: string;
  /** The caller's pool; the adapter borrows connections and never ends it. */
  pool: PostgresPool;
  /** Schema of `twopc_marker` (created if missing). Default `public`. */
  schema?: string;
  /**
   * Default retention for `pruneMarkers`, counted from the branch's commit.
   * Default 7 days. A marker is how a repeated COMMIT PREPARED tells "already
   * committed" from a heuristic hazard, so keep it longer than phase 2 can
   * take to be acknowledged after the commit (coordinator outages included).
   */
  markerRetentionMs?: number;
  /**
   * The proof phase 2 decides "no such prepared transaction" with (see
   * {@link CommitProof}). Default `marker`. With `xid` a two-phase branch
   * writes no marker row; a one-phase commit still does (its answer can be
   * lost before the xid is known).
   */
  commitProof?: CommitProof;
  /**
   * Keep a branch's connection from its PREPARE to its COMMIT or ROLLBACK
   * PREPARED, for at most this long (then it goes back to the pool), so phase
   * 2 needs no second checkout. For a caller that sends phase 2 right after
   * the decision (the in-process coordinator); 0 (the default) gives it back
   * at PREPARE.
   */
  keepPreparedConnectionMs?: number;
  /** How long to wait for the backend of a lost branch connection to go away before answering `outcome-unknown`. Default 5 s. */
  connectionLossWaitMs?: number;
  /** Called with errors of idle or held connections (e.g. the server went away); they never crash the process. */
  onConnectionError?: (err: Error) => void;
}

export type ResolvedPostgresOptions = Readonly<Required<Omit<PostgresParticipantOptions, 'onConnectionError'>>> &
  Pick<PostgresParticipantOptions, 'onConnectionError'>;

const optionsSchema = z.object({
  name: z.string().min(1, 'must be a non-empty string'),
  pool: z.custom<PostgresPool>((p) => typeof p === 'object' && p !== null && typeof (p as { connect?: unknown }).connect === 'function', {
    message: 'must be a pg Pool (an object with connect())',
  }),
  schema: z.string().regex(SCHEMA_PATTERN, `must match ${SCHEMA_PATTERN}`).default('public'),
  markerRetentionMs: z
    .number()
    .int('must be an integer')
    .min(MIN_MARKER_RETENTION_MS, `must be >= ${MIN_MARKER_RETENTION_MS} (1 h): a marker is a commit's proof`)
    .default(DEFAULT_MARKER_RETENTION_MS),
  connectionLossWaitMs: z.number().int('must be an integer').positive('must be > 0').default(5000),
  keepPreparedConnectionMs: z.number().int('must be an integer').min(0, 'must be >= 0').default(0),
  commitProof: z.enum(COMMIT_PROOFS, { error: `must be one of ${COMMIT_PROOFS.join(', ')}` }).default('marker'),
  onConnectionError: z.custom<(err: Error) => void>((f) => typeof f === 'function', { message: 'must be a function' }).optional(),
});

/** Validates once; the message names the field. */
export function parsePostgresOptions(options: PostgresParticipantOptions): ResolvedPostgresOptions {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.join('.') || 'options';
    throw new TwopcError('invalid-config', `PostgresParticipant ${field} ${issue.message}`, { field });
  }
  return Object.freeze(parsed.data);
}
