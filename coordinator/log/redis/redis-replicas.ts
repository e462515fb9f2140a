import type Redis from 'ioredis';

/** How a master is asked whether its replicas have a write. */
export type ReplicaAckCommand = 'WAIT' | 'WAITAOF';

/** What the store knows about the master's replicas, and how it waits for them. */
export interface RedisReplication {
  /** `WAITAOF` on Redis 7.2 and later (the replica fsynced the write to its AOF), else `WAIT` (the replica has it in memory). */
  readonly ackCommand: ReplicaAckCommand;
  /** How long a write waits for its replicas before it fails. */
  readonly timeoutMs: number;
  /** Replicas connected when last asked (INFO replication, `connected_slaves`). */
  replicas: number;
}

/**
 * WAITAOF (Redis 7.2+) returns once the replicas fsynced the write to their
 * append-only file, which survives a replica's own crash; WAIT only once
 * they hold it in memory. Both survive a failover to the replica.
 */
export function replicaAckCommand(version: string | undefined): ReplicaAckCommand {
  const m = /^(\d+)\.(\d+)/.exec(version ?? '');
  if (!m) return 'WAIT';
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 7 || (major === 7 && minor >= 2) ? 'WAITAOF' : 'WAIT';
}

/** `connected_slaves` of an INFO replication reply (0 when absent). */
export function connectedReplicas(info: string): number {
  const m = /^connected_slaves:(\d+)/m.exec(info);
  return m ? Number(m[1]) : 0;
}

/** Asks the master how many replicas are connected now. */
export async function countReplicas(redis: Redis): Promise<number> {
  return connectedReplicas(await redis.info('replication'));
}

/**
 * Waits until `replicas` replicas acknowledged everything the master did up
 * to now, whoever did it; resolves with how many did within the timeout.
 *
 * WAIT (and WAITAOF) wait for the replication offset a connection reached
 * with its last command: Redis 7.0 moves it with any command, older versions
 * only with the connection's own writes. A read, or a decision that found
 * another instance's winner, wrote nothing — yet acting on what it saw needs
 * the replicas to have that winner. So a write to `fenceKey` goes first: it
 * lands after everything the master executed before it, replicas apply
 * writes in order, and the wait covers it on every version.
 */
export async function awaitReplicas(redis: Redis, fenceKey: string, replicas: number, replication: RedisReplication): Promise<number> {
  // Sent in this order on the one connection (pipelined): the WAIT measures the fence write.
  const fence = redis.incr(fenceKey);
  const wait =
    replication.ackCommand === 'WAITAOF'
      ? // numlocal 0: the master's own fsync is appendfsync always's job (checked at open).
        (redis.call('WAITAOF', 0, replicas, replication.timeoutMs) as Promise<[number, number]>).then(([, acked]) => Number(acked))
      : redis.wait(replicas, replication.timeoutMs);
  const [, acked] = await Promise.all([fence, wait]);
  return acked;
}
