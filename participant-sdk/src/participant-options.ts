import { z } from 'zod';
import type { CoordinatorClient } from './coordinator-client';
import { httpUrlListSchema, httpUrlSchema, resolveCoordinatorUrls } from './coordinator-urls';
import { TwopcError } from './errors';
import { PREFIX_PATTERN } from './gid';
import type { PostgresPool } from './postgres';
import { DEFAULT_MARKER_RETENTION_MS, MIN_MARKER_RETENTION_MS } from './postgres/postgres-options';
import { SCHEMA_PATTERN } from './postgres/postgres-sql';
import type { SdkLogger } from './sdk-logger';
import { participantNameSchema } from './wire';

const MINUTE_MS = 60_000;

/** How often a participant service prunes old markers by default (`pruneIntervalMs`); the coordinator's own databases use it too. */
export const DEFAULT_PRUNE_INTERVAL_MS = 60 * MINUTE_MS;
/** The longest delay a Node timer keeps (2^31 - 1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 0x7fffffff;

export const ENLIST_MODES = ['held', 'eager'] as const;
/** `held`: the connection stays in the branch until the coordinator's prepare. `eager`: PREPARE as soon as the work ends, freeing the connection. */
export type EnlistMode = (typeof ENLIST_MODES)[number];

/**
 * Options of {@link createParticipant}.
 *
 * @example
 * createParticipant({
 *   name: 'orders', pool, coordinatorUrl: 'http://twopc:7070', apiToken: process.env.TWOPC_TOKEN,
 *   secret: process.env.TWOPC_PARTICIPANT_SECRET, publicUrl: 'http://orders:8080/twopc',
 * })
 */
export interface ParticipantOptions {
  /** This participant's name at the coordinator (1-64 of [A-Za-z0-9_.-]). */
  name: string;
  /** The service's own pool; the SDK borrows connections and never ends it. */
  pool: PostgresPool;
  /** Base URL of the coordinator service (or of a load balancer in front of its instances). Give this or `coordinatorUrls`. */
  coordinatorUrl?: string;
  /**
   * Base URLs of several instances of one coordinator cluster (sharing one
   * decision log), in order of preference: the SDK's calls, the self-sweep's
   * included, fail over between them (see CoordinatorClient's `retries`).
   */
  coordinatorUrls?: string[];
  /** Shared secret the coordinator signs its calls with (`twopc-signature`); at least 16 characters. */
  secret: string;
  /** Bearer token of the coordinator API. */
  apiToken?: string;
  /** Where the coordinator reaches this service's router (what `router()` is mounted at), e.g. `http://orders:8080/twopc`. */
  publicUrl: string;
  /** Schema of `twopc_marker` (created if missing). Default `public`. */
  schema?: string;
  /** GID prefix of the coordinator cluster; the self-sweep touches only GIDs with it. Default `twopc`. */
  gidPrefix?: string;
  /** Default mode of `enlist`. Default `held`. */
  mode?: EnlistMode;
  /** How often the self-sweep looks at this database's prepared branches; 0 disables it. Default 30 s. */
  sweepIntervalMs?: number;
  /** A prepared branch younger than this is left to the coordinator's own phase 2. Default 60 s. */
  sweepGraceMs?: number;
  /**
   * A prepared branch whose transaction the coordinator does not know (404)
   * is rolled back only when both it and its transaction are older than this
   * (presumed abort). Must exceed the coordinator's longest transaction
   * timeout plus its decision latency. Default 15 min.
   */
  presumeAbortAfterMs?: number;
  /** A held branch never asked to prepare is rolled back this long after its transaction expired (clock skew margin). Default 2 s. */
  heldGraceMs?: number;
  /** Longest a branch is held when the coordinator did not say when its transaction expires. Default 10 min. */
  maxHeldMs?: number;
  /** How often old markers are pruned; 0 disables it. Default 1 h. */
  pruneIntervalMs?: number;
  /** A marker is pruned once its branch's commit is this old. Default 7 days (longer than a coordinator can take to finish phase 2, outages included). */
  markerRetentionMs?: number;
  /** Largest request body the router reads. Default 64 KiB. */
  maxBodyBytes?: number;
  /** How long to wait for the backend of a lost branch connection to go away. Default 5 s. */
  connectionLossWaitMs?: number;
  /** Per call to the coordinator, failovers included. Default 60 s. */
  requestTimeoutMs?: number;
  /** A client to share (its URLs and token are used instead of coordinatorUrl(s) / apiToken). */
  coordinator?: CoordinatorClient;
  /** pino or anything shaped like it. Default: silent. */
  logger?: SdkLogger;
}

// An age compared with a clock, never a timer's delay: as long as the operator likes
// (presumeAbortAfterMs must exceed the coordinator's longest transaction timeout, which may be months).
const duration = (min: number) => z.number().int('must be an integer').min(min, `must be >= ${min}`);
// A setting that becomes a timer's delay: Node runs a longer one after 1 ms, so it is refused.
const ms = (min: number) => duration(min).max(MAX_TIMER_MS, `must be <= ${MAX_TIMER_MS} (about 24.8 days: the longest delay a Node timer keeps)`);
const bytes = (min: number) => z.number().int('must be an integer').min(min, `must be >= ${min} bytes`);

const optionsSchema = z
  .object({
    name: participantNameSchema,
    pool: z.custom<PostgresPool>((p) => typeof p === 'object' && p !== null && typeof (p as { connect?: unknown }).connect === 'function', {
      message: 'must be a pg Pool (an object with connect())',
    }),
    coordinatorUrl: httpUrlSchema.optional(),
    coordinatorUrls: httpUrlListSchema.optional(),
    secret: z.string().min(16, 'must be at least 16 characters'),
    apiToken: z.string().min(1, 'must not be empty').optional(),
    // No trailing slash: the coordinator appends `/prepare` etc. and signs the path it sends.
    publicUrl: httpUrlSchema.max(2048).transform((u) => u.replace(/\/+$/, '')),
    schema: z.string().regex(SCHEMA_PATTERN, `must match ${SCHEMA_PATTERN}`).default('public'),
    gidPrefix: z.string().regex(PREFIX_PATTERN, `must match ${PREFIX_PATTERN}`).default('twopc'),
    mode: z.enum(ENLIST_MODES).default('held'),
    sweepIntervalMs: ms(0).default(30_000),
    sweepGraceMs: duration(0).default(MINUTE_MS),
    presumeAbortAfterMs: duration(1).default(15 * MINUTE_MS),
    heldGraceMs: ms(0).default(2_000),
    maxHeldMs: ms(1).default(10 * MINUTE_MS),
    pruneIntervalMs: ms(0).default(DEFAULT_PRUNE_INTERVAL_MS),
    markerRetentionMs: z
      .number()
      .int('must be an integer')
      .min(MIN_MARKER_RETENTION_MS, `must be >= ${MIN_MARKER_RETENTION_MS} (1 h): a marker is a commit's proof`)
      .default(DEFAULT_MARKER_RETENTION_MS),
    maxBodyBytes: bytes(256).default(64 * 1024),
    connectionLossWaitMs: ms(1).default(5_000),
    requestTimeoutMs: ms(1).default(60_000),
    coordinator: z.custom<CoordinatorClient>((c) => typeof c === 'object' && c !== null && typeof (c as { enlist?: unknown }).enlist === 'function', {
      message: 'must be a CoordinatorClient',
    }).optional(),
    logger: z.custom<SdkLogger>((l) => typeof l === 'object' && l !== null && typeof (l as { warn?: unknown }).warn === 'function', {
      message: 'must be a logger (pino)',
    }).optional(),
  })
  .strict()
  .transform(({ coordinatorUrl, coordinatorUrls, ...rest }, ctx) => ({
    ...rest,
    coordinatorUrls: resolveCoordinatorUrls(coordinatorUrl, coordinatorUrls, { single: 'coordinatorUrl', many: 'coordinatorUrls' }, ctx),
  }));

export type ResolvedParticipantOptions = Readonly<z.output<typeof optionsSchema>>;

/** Validates once; the message names the field. */
export function parseParticipantOptions(options: ParticipantOptions): ResolvedParticipantOptions {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
    const field = unknownKey ?? (issue.path.map(String).join('.') || 'options');
    if (unknownKey) throw new TwopcError('invalid-config', `createParticipant: ${unknownKey} is not an option`, { field });
    throw new TwopcError('invalid-config', `createParticipant: ${field} ${issue.message}`, { field });
  }
  return Object.freeze(parsed.data);
}
