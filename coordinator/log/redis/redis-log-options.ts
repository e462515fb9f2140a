import { z } from 'zod';
import { intOption, parseStoreOptions, sharedStoreDefaults, sharedStoreOptionShape, type ResolvedSharedStoreOptions, type SharedStoreOptions } from '../shared-store/store-options';
import { NAMESPACE_PATTERN } from './redis-keys';

const DEFAULT_REPLICA_ACK_TIMEOUT_MS = 2_000;

/** Options of {@link RedisDecisionLog}. Only `url` is required. */
export interface RedisDecisionLogOptions extends SharedStoreOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  /** Keys live under the hash tag `{twopc:<namespace>}`; coordinators sharing a log use the same one. Default `default`. */
  namespace?: string;
  /** Start even though the server would not keep an acknowledged decision through a crash, with a loud warning. Default false. */
  allowVolatile?: boolean;
  /** Share one script call (one AOF write and fsync) among concurrent writes. Default true; false sends each write alone, one at a time (for measurement). */
  groupCommit?: boolean;
  /** Most writes in one script call. Default 512. */
  maxBatch?: number;
  /** Script calls in flight at once (pipelined on the one connection). Default 2. */
  batchesInFlight?: number;
  /**
   * How long one command may go unanswered: past it the command fails (retried until
   * `retryDeadlineMs`) and a connection that has answered nothing for that long is closed
   * and made again. So every call ends within `retryDeadlineMs` plus one attempt, even
   * when the network drops packets without resetting anything. Default 5 s.
   */
  callTimeoutMs?: number;
  /**
   * With replicas: how long a decision waits for every online replica (one past its initial sync) to acknowledge it
   * (WAIT, or WAITAOF on Redis 7.2+) before the decide fails with `log-unavailable` — the
   * decision does not count then (a failover could drop it). Less than `callTimeoutMs`.
   * Default 2 s, or half of `callTimeoutMs` if that is less.
   */
  replicaAckTimeoutMs?: number;
}

/** Options after validation and defaults, frozen. */
export interface ResolvedRedisLogOptions extends ResolvedSharedStoreOptions {
  readonly url: string;
  readonly namespace: string;
  readonly batchesInFlight: number;
  readonly replicaAckTimeoutMs: number;
}

const schema = z
  .strictObject({
    url: z.string({ error: 'url must be a string' }).regex(/^rediss?:\/\//, 'url must start with redis:// or rediss://'),
    namespace: z.string({ error: 'namespace must be a string' }).regex(NAMESPACE_PATTERN, `namespace must match ${NAMESPACE_PATTERN}`).default('default'),
    batchesInFlight: intOption('batchesInFlight', 1, 64).default(2),
    replicaAckTimeoutMs: intOption('replicaAckTimeoutMs', 1).optional(),
    ...sharedStoreOptionShape,
  })
  // The WAIT must end (and say how many replicas have the decision) before the command is given up on.
  .refine((o) => o.replicaAckTimeoutMs === undefined || o.replicaAckTimeoutMs < o.callTimeoutMs, {
    message: 'replicaAckTimeoutMs must be less than callTimeoutMs',
    path: ['replicaAckTimeoutMs'],
  });

/** Validates once, with messages that name the field; throws `invalid-config`. */
export function resolveRedisLogOptions(options: RedisDecisionLogOptions): ResolvedRedisLogOptions {
  const o = parseStoreOptions(schema, options, 'redis');
  return Object.freeze({
    ...o,
    batchesInFlight: o.groupCommit ? o.batchesInFlight : 1,
    replicaAckTimeoutMs: o.replicaAckTimeoutMs ?? Math.min(DEFAULT_REPLICA_ACK_TIMEOUT_MS, Math.floor(o.callTimeoutMs / 2)),
    ...sharedStoreDefaults(o),
  });
}
