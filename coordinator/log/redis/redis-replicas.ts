import type Redis from 'ioredis';
import { notReplicated } from '../log-errors';
import { isCommandTimeout } from './redis-log-failures';

/** How a master is asked whether its replicas have a write. */
export type ReplicaAckCommand = 'WAIT' | 'WAITAOF';

/** What the store knows about the master's replicas, and how it waits for them. */
export interface RedisReplication {
  /** `WAITAOF` on Redis 7.2 and later (the replica fsynced the write to its AOF), else `WAIT` (the replica has it in memory). */
  readonly ackCommand: ReplicaAckCommand;
  /** How long a write waits for its replicas before it fails. */
  readonly timeoutMs: number;
  /** Replicas online when last asked (INFO replication: `slaveN:…,state=online`). */
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

/**
 * Replicas of an INFO replication reply whose state is `online`. Not
 * `connected_slaves`: that also counts a replica still in its full
 * resynchronization (`wait_bgsave`, `send_bulk`), which acknowledges nothing
 * until it is done, so every decision would wait for it and fail for the
 * whole resync. Such a replica has no consistent copy to fail over to yet;
 * the writes made meanwhile reach it after its snapshot, in order.
 */
export function onlineReplicas(info: string): number {
  let online = 0;
  for (const m of info.matchAll(/^slave\d+:(.*)$/gm)) if (/(^|,)state=online(,|$)/.test(m[1].trim())) online += 1;
  return online;
}

/** Asks the master how many replicas are online now. */
export async function countReplicas(redis: Redis): Promise<number> {
  return onlineReplicas(await redis.info('replication'));
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

/**
 * The waits for replicas, on a connection of their own. A WAIT blocks its
 * connection until the replicas answer or its timeout ends; on the store's
 * one connection it held back every other call, lease renewals included,
 * for up to the timeout each, and queued waits pushed later calls past their
 * deadline.
 *
 * Why a wait on another connection still covers a caller's write: the
 * caller asks only once its write (or its read of a winner) was answered, so
 * the master executed it before it executes the fence write sent here next;
 * the replicas apply the master's writes in that one order; and the wait
 * measures this connection's own last write, the fence (see awaitReplicas).
 *
 * One wait runs at a time. Callers that come while one runs share the next
 * one, which is sent only after they came (so its fence follows their
 * writes): waits never queue up behind each other on the connection.
 */
export class ReplicaWaiter {
  private tail?: Promise<number>;
  private next?: { replicas: number; result: Promise<number> };

  constructor(
    private readonly connection: () => Redis,
    private readonly fenceKey: string,
    private readonly replication: RedisReplication,
  ) {}

  /** How many of `replicas` acknowledged everything the master executed before this call, within the timeout. */
  wait(replicas: number): Promise<number> {
    if (this.next) {
      this.next.replicas = Math.max(this.next.replicas, replicas);
      return this.next.result;
    }
    const entry: { replicas: number; result: Promise<number> } = { replicas, result: Promise.resolve(0) };
    const previous = this.tail ?? Promise.resolve(0);
    entry.result = previous
      .catch(() => 0)
      .then(() => {
        // Sent from here on: a caller coming now waits for the next one.
        if (this.next === entry) this.next = undefined;
        return awaitReplicas(this.connection(), this.fenceKey, entry.replicas, this.replication);
      });
    this.next = entry;
    this.tail = entry.result;
    return entry.result;
  }
}

/**
 * Lets a write, or a read that returns a decision, count only once every
 * replica online at that moment acknowledged it. The replicas are counted
 * with each call, so a replica attached after open() is waited for too, once
 * its full resync is done; the waits block a connection of their own (see
 * ReplicaWaiter), made when first needed.
 */
export class ReplicaGate {
  private connection?: Redis;
  private waiter?: ReplicaWaiter;

  constructor(
    readonly replication: RedisReplication,
    private readonly log: {
      readonly where: string;
      readonly fenceKey: string;
      /** The connection every other call goes through. */
      main(): Redis;
      isOpen(): boolean;
      onConnectionError(e: Error): void;
    },
  ) {}

  /** Connected replicas now. */
  async replicasNow(): Promise<number> {
    this.replication.replicas = await countReplicas(this.log.main());
    return this.replication.replicas;
  }

  /**
   * Fails (final, not retried: the wait was the grace) unless `replicas`
   * replicas acknowledged everything the master did so far. A lost connection
   * while waiting is retried like any other.
   */
  async confirm(operation: string, replicas: number): Promise<void> {
    const replication = this.replication;
    this.waiter ??= new ReplicaWaiter(() => this.waitingConnection(), this.log.fenceKey, replication);
    const acknowledged = await this.waiter.wait(replicas).catch((e: unknown) => {
      // As on the main connection (see the log's attemptFailed): one that timed out is made again.
      if (isCommandTimeout(e) && this.log.isOpen()) this.connection?.disconnect(true);
      throw e;
    });
    if (acknowledged >= replicas) return;
    throw notReplicated(
      this.log.where,
      operation,
      `${acknowledged} of ${replicas} replicas acknowledged it within ${replication.timeoutMs} ms (${replication.ackCommand}), so a failover to one could drop it; it does not count until they have it, and whoever reads the register then gets it`,
      `find out why the replicas lag (or are frozen); raise replicaAckTimeoutMs if they are only slow${replication.ackCommand === 'WAITAOF' ? '; replicas must run appendonly yes (WAITAOF counts a replica once it fsynced the write)' : ''}`,
      { replicas, acknowledged, command: replication.ackCommand },
    );
  }

  /** Closes the waits' connection, if one was made. */
  async close(): Promise<void> {
    await this.connection?.quit().catch(() => this.connection?.disconnect());
  }

  /** Drops the waits' connection at once (a failed open). */
  drop(): void {
    this.connection?.disconnect();
  }

  /**
   * A second connection, for the waits alone: a WAIT blocks its connection,
   * and the main one carries everything else (lease renewals among it).
   */
  private waitingConnection(): Redis {
    if (!this.connection) {
      const connection = this.log.main().duplicate({ connectionName: 'twopc-decision-log-replica-wait' });
      connection.on('error', (e: Error) => this.log.onConnectionError(e));
      this.connection = connection;
    }
    return this.connection;
  }
}
