import { TwopcError } from '../../engine/ports/protocol';

/** Allowed namespaces: no braces (they would move the hash tag) and no spaces. */
export const NAMESPACE_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;

/** The keys of one store. */
export interface LogKeys {
  /** `{twopc:<namespace>}`: the hash tag every key starts with. */
  readonly tag: string;
  /** Sorted set: unfinished transactions, scored by the order first seen. */
  readonly unfinished: string;
  /** Sorted set: completed transactions, scored by completion time (what compaction reads). */
  readonly completed: string;
  /** Counter giving the first-seen order. */
  readonly firstSeen: string;
  /** Hash: `records` and `bytes` held, for reports. */
  readonly stats: string;
  /** Hash: `layout`, the data layout version. */
  readonly meta: string;
  /** Sorted set: lease tokens of coordinator instances sharing the log, scored by token. */
  readonly leases: string;
  /** Counter issuing lease tokens (fencing tokens). */
  readonly leaseTokens: string;
  /** Counter written before waiting for replicas, so the wait covers what was read (see awaitReplicas). */
  readonly replicaFence: string;
  /** Hash: one lease (`name`, `url`, `expiresAt`, `takenOverBy`, `takenOverAt`). */
  lease(token: number | string): string;
  /** List: a transaction's records in order (appends as `<op id>|<json>`, the decision as `d`). */
  records(txId: string): string;
  /** String: a transaction's decision, set once (the register). */
  decision(txId: string): string;
}

/**
 * Every key of a store carries the same hash tag, `{twopc:<namespace>}`, so
 * all of them live in one hash slot: one script can touch any of them
 * atomically, and on a Redis Cluster they all sit on one shard (which is the
 * point: the register and its indexes change together or not at all).
 *
 * @example
 * logKeys('prod').decision('0190…') // '{twopc:prod}:decision:0190…'
 */
export function logKeys(namespace: string): LogKeys {
  if (!NAMESPACE_PATTERN.test(namespace)) {
    throw new TwopcError('invalid-config', `namespace must match ${NAMESPACE_PATTERN} (got ${JSON.stringify(namespace)})`, { field: 'namespace' });
  }
  const tag = `{twopc:${namespace}}`;
  return Object.freeze({
    tag,
    unfinished: `${tag}:unfinished`,
    completed: `${tag}:completed`,
    firstSeen: `${tag}:first-seen`,
    stats: `${tag}:stats`,
    meta: `${tag}:meta`,
    leases: `${tag}:leases`,
    leaseTokens: `${tag}:lease-tokens`,
    replicaFence: `${tag}:replica-fence`,
    lease: (token: number | string) => `${tag}:lease:${token}`,
    records: (txId: string) => `${tag}:tx:${txId}`,
    decision: (txId: string) => `${tag}:decision:${txId}`,
  });
}

/** The list entry that stands for the decision (its text lives under the decision key). */
export const DECISION_ENTRY = 'd';

/** Separates an append's op id from its JSON in a list entry. */
export const OP_SEPARATOR = '|';
