import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { TwopcError } from '../../engine/ports/protocol';
import type { AppendableRecord, CompactReport, DecisionLog, DecisionRecord, LogRecord, OpenReport, TxSnapshot } from '../../engine/ports/decision-log';
import { foldTransaction, foldUnfinished } from '../shared-store/fold-records';
import { logNotDurable, logUnreachable, newerLayout, notReplicated, volatileWarning } from '../log-errors';
import { OrderedBatcher } from '../shared-store/ordered-batcher';
import { decodeRecord, encodeAppend, encodeDecision } from '../shared-store/record-text';
import { redactUrl } from '../shared-store/redact-url';
import { DEFAULT_RETRY, retryWrite, type RetryPolicy } from '../shared-store/retry-write';
import { StoreLifecycle } from '../store-lifecycle';
import { durabilityProblem, inspectRedisDurability, type RedisDurability } from './redis-durability-check';
import { DECISION_ENTRY, OP_SEPARATOR, logKeys, type LogKeys } from './redis-keys';
import { resolveRedisLogOptions, type RedisDecisionLogOptions, type ResolvedRedisLogOptions } from './redis-log-options';
import { APPLY_BATCH, FENCED_REPLY, FORGET_COMPLETED, READ_TRANSACTIONS, runScript, type LuaScript } from './redis-scripts';
import { RedisLeaseStore } from './redis-lease-store';
import { countReplicas, ReplicaWaiter, replicaAckCommand, type RedisReplication } from './redis-replicas';
import type { LeaseStore } from '../../engine/ports/lease-store';

export type { RedisDecisionLogOptions } from './redis-log-options';

/** The data layout this code writes; kept in the meta hash. */
const LAYOUT_VERSION = 1;
// Transactions per read or compaction script call: bounds how long one script holds the server.
const CHUNK = 500;
// An idle connection whose server vanished (a host gone without a FIN) is found by TCP keepalive probes after this.
const KEEPALIVE_DELAY_MS = 5_000;
// What ioredis rejects a command with after `commandTimeout`.
const COMMAND_TIMED_OUT = 'Command timed out';

interface WriteOp {
  txId: string;
  mode: 'a' | 'd';
  type: LogRecord['type'];
  /** Decision JSON, or `<op id>|<json>`. */
  payload: string;
  at: number;
  /** The fencing token of the lease this write was made under ('' when none), fixed when it is made, not when it is sent. */
  token: string;
}

// Reply errors that mean "not now" rather than "never": the server is loading
// its AOF after a restart, busy with a script, a replica during failover, or
// refusing writes until its disk recovers (MISCONF).
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|READONLY|MASTERDOWN|CLUSTERDOWN|MISCONF|NOREPLICAS)\b/;

/**
 * Whether an attempt may be made again. Anything that is not an answer from
 * the server (connection closed, reconnect attempts exhausted, a command
 * timeout) is; of the server's answers, only the transient ones above. Every
 * write is compare-and-set, so a retry of one that did run changes nothing.
 */
function isTransient(e: unknown): boolean {
  if (!(e instanceof Error) || e instanceof TwopcError) return false;
  if (e.name !== 'ReplyError') return true;
  return TRANSIENT_REPLY.test(e.message);
}

/**
 * The decision log in Redis, for several coordinator instances that want
 * low latency: the register is `SET`-if-absent inside a Lua script that also
 * indexes the transaction, so the decision and its bookkeeping change
 * together, and every caller gets the winner back.
 *
 * - Durability: open() refuses (`invalid-config`) a server that would not
 *   keep an acknowledged write through a crash — anything but a master with
 *   `appendonly yes`, `appendfsync always` (see redis-durability-check) —
 *   unless `allowVolatile`, which starts with a loud warning. With
 *   `appendfsync always`, Redis writes and fsyncs the AOF before it sends any
 *   reply, so a resolved decide() is on disk.
 * - Replicas: a failover to a replica that had not received a decision would
 *   drop it. So a decision, and a read that returns one, counts only once
 *   every replica online at that moment acknowledged it (WAITAOF on Redis
 *   7.2+, else WAIT) within `replicaAckTimeoutMs`; otherwise the call fails
 *   with `log-unavailable` and the decision is only what the register says
 *   to whoever reads it later. The replicas online are counted with each
 *   such call, so a replica attached after open() is waited for too, once
 *   its full resync is done. The waits block a connection of their own, not
 *   the one every other call (lease renewals among them) goes through.
 * - One hash slot: every key starts with `{twopc:<namespace>}` (see redis-keys).
 * - Group commit: concurrent writes go in one script call, which Redis runs
 *   atomically and persists with one AOF write and one fsync.
 * - Retries: every write is an idempotent compare-and-set, so when ioredis
 *   resends an unanswered command after a reconnect, or this store retries
 *   after any error, running it again returns the same winner and stores no
 *   record twice. A decide that fails is retried until `retryDeadlineMs`,
 *   then fails with `log-unavailable` (the register still holds the truth for
 *   whoever asks next).
 *
 * @example
 * const log = new RedisDecisionLog({ url: 'redis://redis:6379', namespace: 'prod' });
 * await log.open(); // refuses a server without appendonly yes + appendfsync always
 */
export class RedisDecisionLog implements DecisionLog {
  readonly kind = 'redis';
  /** The server (without password) and namespace, as messages name it. */
  readonly where: string;
  private readonly o: ResolvedRedisLogOptions;
  private readonly keys: LogKeys;
  private readonly life: StoreLifecycle;
  private readonly retry: RetryPolicy;
  private redis?: Redis;
  /** The connection the waits for replicas block, made when first needed (see ReplicaWaiter). */
  private waitConnection?: Redis;
  private waiter?: ReplicaWaiter;
  private readonly batcher: OrderedBatcher<WriteOp, string>;
  private readonly deciding = new Map<string, Promise<DecisionRecord>>();
  private readonly instance = randomBytes(6).toString('base64url');
  private ops = 0;
  private lastConnectionError?: string;
  /** The fencing token every write carries once this process holds a lease (see `leases`). */
  private fenceToken = '';
  /** Coordinator instances sharing this log: their leases, whose tokens fence this log's writes. */
  readonly leases: LeaseStore;
  /** What open() found about the server's persistence. */
  durability?: RedisDurability;
  /** How this store waits for the master's replicas; undefined when it cannot count them (INFO unavailable, allowVolatile). */
  replication?: RedisReplication;

  constructor(options: RedisDecisionLogOptions) {
    this.o = resolveRedisLogOptions(options);
    this.keys = logKeys(this.o.namespace);
    this.where = `${redactUrl(this.o.url)} (namespace ${this.o.namespace})`;
    this.life = new StoreLifecycle(this.where, 'RedisDecisionLog');
    this.retry = { ...DEFAULT_RETRY, deadlineMs: this.o.retryDeadlineMs };
    this.batcher = new OrderedBatcher<WriteOp, string>([
      { maxBatch: this.o.groupCommit ? this.o.maxBatch : 1, maxInFlight: this.o.batchesInFlight, run: (ops) => this.runBatch(ops) },
    ]);
    // A new token or a takeover that a failover dropped could be issued again, to another process
    // (a takeover that took nothing answers 0).
    const replicated = new Set(['lease register', 'lease takeover']);
    this.leases = new RedisLeaseStore(
      this.keys,
      (operation, s, keys, args) => (replicated.has(operation) ? this.scriptReplicated<unknown>(operation, s, keys, args, (r) => r !== 0) : this.script(operation, s, keys, args)),
      (token) => {
        this.fenceToken = String(token);
      },
    );
  }

  /** Batches sent and the writes they carried, since construction. */
  get writeCounts(): { batches: number; writes: number } {
    return { batches: this.batcher.counts.batches, writes: this.batcher.counts.items };
  }

  open(): Promise<OpenReport> {
    return this.life.open(
      () => this.load(),
      async () => {
        this.redis?.disconnect();
        this.waitConnection?.disconnect();
      },
    );
  }

  private async load(): Promise<OpenReport> {
    const redis = new Redis(this.o.url, {
      connectionName: 'twopc-decision-log',
      // A server that stops answering without closing the connection (a network dropping packets,
      // a frozen host) would hold every call until the kernel gives up on the socket, if ever:
      // commands fail after callTimeoutMs (the connection is then made again, see withRetry) and
      // keepalive probes find dead idle connections. (Not ioredis's socketTimeout: its timer
      // outlives the connection it was set for and can later destroy the next one.)
      connectTimeout: this.o.callTimeoutMs,
      commandTimeout: this.o.callTimeoutMs,
      keepAlive: KEEPALIVE_DELAY_MS,
      // How long a closed connection's socket may take to finish closing before it is destroyed.
      disconnectTimeout: Math.min(this.o.callTimeoutMs, 2_000),
      // Surface errors to the retry loop after a couple of reconnects instead of queueing for ever.
      maxRetriesPerRequest: 2,
      retryStrategy: (times) => Math.min(times * 50, 1000),
      // Commands sent but unanswered when a connection drops are resent on the next one: safe, see APPLY_BATCH.
      autoResendUnfulfilledCommands: true,
    });
    // Connection errors reach callers through their commands (as "max retries per
    // request" once reconnecting gave up, which hides the reason: kept here for the message).
    redis.on('error', (e: Error) => {
      this.lastConnectionError = e.message;
    });
    redis.on('ready', () => {
      this.lastConnectionError = undefined;
    });
    this.redis = redis;
    // A server still starting (or restarting) gets the retry deadline to come up.
    await this.withRetry('open', () => this.checkDurability(redis));
    const meta = await this.withRetry('open', () =>
      redis.multi().hsetnx(this.keys.meta, 'layout', LAYOUT_VERSION).hget(this.keys.meta, 'layout').hget(this.keys.stats, 'records').zcard(this.keys.unfinished).exec(),
    );
    const [, layout, records, unfinished] = (meta ?? []).map(([e, v]) => {
      if (e) throw logUnreachable(this.where, 'open', e, 1);
      return v;
    });
    if (Number(layout) > LAYOUT_VERSION) throw newerLayout(this.where, Number(layout), LAYOUT_VERSION);
    return { records: Number(records ?? 0), unfinished: Number(unfinished) };
  }

  private async checkDurability(redis: Redis): Promise<void> {
    this.durability = await inspectRedisDurability(redis);
    if (this.durability.replicas !== undefined) {
      this.replication = { ackCommand: replicaAckCommand(this.durability.version), timeoutMs: this.o.replicaAckTimeoutMs, replicas: this.durability.replicas };
    }
    const problem = durabilityProblem(this.durability);
    if (!problem) return;
    const refusal = logNotDurable(this.where, problem.found, problem.fix, { ...this.durability });
    if (!this.o.allowVolatile) throw refusal;
    this.o.onWarning(volatileWarning(refusal));
  }

  // Async, so a refusal or a malformed record is a rejection; nothing before `submit` awaits, so
  // writes issued in one synchronous run still go in one batch.
  async append(record: AppendableRecord): Promise<void> {
    const refusal = this.life.refusal();
    if (refusal) throw refusal;
    const encoded = encodeAppend(record);
    const r = encoded.record;
    // Unique per append: what lets a resent append find itself already stored.
    const opId = `${this.instance}:${++this.ops}`;
    await this.batcher.submit(0, { txId: r.txId, mode: 'a', type: r.type, payload: `${opId}${OP_SEPARATOR}${encoded.json}`, at: r.at, token: this.fenceToken });
  }

  async decide(decision: Omit<DecisionRecord, 'type'>): Promise<DecisionRecord> {
    const refusal = this.life.refusal();
    if (refusal) throw refusal;
    const encoded = encodeDecision(decision);
    const txId = encoded.record.txId;
    const pending = this.deciding.get(txId);
    if (pending) return pending;
    const winner = this.batcher
      .submit(0, { txId, mode: 'd', type: 'decision', payload: encoded.json, at: encoded.record.at, token: this.fenceToken })
      // '' means this decision won; otherwise the reply is the one that was there first.
      .then((json) => (json === '' || json === encoded.json ? encoded.record : (this.decode(json, this.keys.decision(txId)) as DecisionRecord)))
      .finally(() => this.deciding.delete(txId));
    this.deciding.set(txId, winner);
    return winner;
  }

  async get(txId: string): Promise<TxSnapshot | undefined> {
    return foldTransaction(txId, await this.history(txId));
  }

  async history(txId: string): Promise<LogRecord[]> {
    const [records] = await this.readTransactions([txId]);
    return records;
  }

  /**
   * In pages by first-seen order (the scores are unique), each page's ids and
   * records a command of their own under `callTimeoutMs`: one command for the
   * whole backlog would take longer the more transactions are in doubt.
   */
  async unfinished(): Promise<TxSnapshot[]> {
    const all: LogRecord[] = [];
    let after = '-inf';
    for (;;) {
      const page = await this.command('unfinished', (r) => r.zrangebyscore(this.keys.unfinished, after, '+inf', 'WITHSCORES', 'LIMIT', 0, CHUNK));
      const txIds = page.filter((_, i) => i % 2 === 0);
      if (txIds.length > 0) for (const records of await this.readTransactions(txIds)) all.push(...records);
      if (txIds.length < CHUNK) break;
      after = `(${page[page.length - 1]}`;
    }
    return foldUnfinished(all);
  }

  /** Forgets completed transactions past retention; bytes are those of the records held (tracked by the scripts). */
  async compact(): Promise<CompactReport> {
    const bytesBefore = Number(await this.command('compact', (r) => r.hget(this.keys.stats, 'bytes')));
    const cutoff = this.o.now() - this.o.completedRetentionMs;
    let forgotten = 0;
    for (;;) {
      const txIds = await this.command('compact', (r) => r.zrangebyscore(this.keys.completed, '-inf', cutoff, 'LIMIT', 0, CHUNK));
      if (txIds.length === 0) break;
      const keys = [this.keys.unfinished, this.keys.completed, this.keys.stats, ...txIds.flatMap((tx) => [this.keys.records(tx), this.keys.decision(tx)])];
      const n = Number(await this.command('compact', (r) => runScript(r, FORGET_COMPLETED, keys, [cutoff, ...txIds])));
      forgotten += n;
      // Nothing forgotten means the rest changed under us (another coordinator): stop rather than spin.
      if (n === 0 || txIds.length < CHUNK) break;
    }
    const [bytesAfter, unfinished, completed] = await this.command('compact', (r) =>
      Promise.all([r.hget(this.keys.stats, 'bytes'), r.zcard(this.keys.unfinished), r.zcard(this.keys.completed)]),
    );
    return { forgotten, kept: unfinished + completed, bytesBefore, bytesAfter: Number(bytesAfter) };
  }

  idle(): Promise<void> {
    return this.batcher.idle();
  }

  /**
   * Appends are on the master's disk once resolved (appendfsync always); a
   * one-phase commit's registration must also be on the replicas, or a
   * failover could drop it while its COMMIT goes out.
   */
  async makeDurable(): Promise<void> {
    const refusal = this.life.refusal();
    if (refusal) throw refusal;
    await this.withRetry('make durable', async () => {
      const replicas = await this.replicasNow();
      if (replicas > 0) await this.confirmReplicated('make durable', replicas);
    });
  }

  /** Waits for writes in flight, then closes the connection. */
  close(): Promise<void> {
    return this.life.close(async () => {
      await this.batcher.idle();
      await this.waitConnection?.quit().catch(() => this.waitConnection?.disconnect());
      await this.redis?.quit().catch(() => this.redis?.disconnect());
    });
  }

  private decode(json: string, location: string): LogRecord {
    return decodeRecord(json, this.where, location);
  }

  /** Runs `fn` on the connection, retried through lost connections; refuses when the store is not open. */
  private command<T>(operation: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
    const refusal = this.life.refusal();
    if (refusal) return Promise.reject(refusal);
    return this.withRetry(operation, () => fn(this.redis!));
  }

  /**
   * Retries `attempt` through transient failures. A command that timed out
   * leaves its connection suspect (an answer may never come on it, and every
   * later command would queue behind it): the connection is made again, and
   * what was sent but not answered is resent there — safe, see APPLY_BATCH.
   */
  private withRetry<T>(operation: string, attempt: () => Promise<T>): Promise<T> {
    const reconnectingOnTimeout = () =>
      attempt().catch((e: unknown) => {
        if (e instanceof Error && e.message === COMMAND_TIMED_OUT && this.life.isOpen) this.redis?.disconnect(true);
        throw e;
      });
    return retryWrite(reconnectingOnTimeout, isTransient, this.retry, (e, n) => {
      if (e instanceof TwopcError) return e;
      const reason = this.lastConnectionError && e instanceof Error && e.name !== 'ReplyError' ? new Error(`${e.message} (last connection error: ${this.lastConnectionError})`, { cause: e }) : e;
      return logUnreachable(this.where, operation, reason, n);
    });
  }

  private script(operation: string, s: LuaScript, keys: string[], args: Array<string | number>): Promise<unknown> {
    return this.withRetry(operation, () => runScript(this.redis!, s, keys, args));
  }

  /**
   * Runs a script (retried through lost connections) and, when `replicated`
   * says its result holds a decision, lets it count only once every replica
   * online now acknowledged it. The replicas are counted in the same round
   * trip as the script. Lease registrations and takeovers go through it too:
   * a token or takeover a failover dropped could be issued again.
   */
  private scriptReplicated<T>(operation: string, s: LuaScript, keys: string[], args: Array<string | number>, replicated: (result: T) => boolean): Promise<T> {
    return this.withRetry(operation, async () => {
      const [result, replicas] = await Promise.all([runScript(this.redis!, s, keys, args) as Promise<T>, this.replicasNow()]);
      if (replicas > 0 && replicated(result)) await this.confirmReplicated(operation, replicas);
      return result;
    });
  }

  /** Connected replicas now (0 without a way to count them: allowVolatile on a server that denies INFO). */
  private async replicasNow(): Promise<number> {
    if (!this.replication) return 0;
    this.replication.replicas = await countReplicas(this.redis!);
    return this.replication.replicas;
  }

  /**
   * Fails (final, not retried: the wait was the grace) unless `replicas`
   * replicas acknowledged everything the master did so far. A lost connection
   * while waiting is retried like any other.
   */
  private async confirmReplicated(operation: string, replicas: number): Promise<void> {
    const replication = this.replication!;
    this.waiter ??= new ReplicaWaiter(() => this.waitingConnection(), this.keys.replicaFence, replication);
    const acknowledged = await this.waiter.wait(replicas).catch((e: unknown) => {
      // As on the main connection (see withRetry): one that timed out is made again.
      if (e instanceof Error && e.message === COMMAND_TIMED_OUT && this.life.isOpen) this.waitConnection?.disconnect(true);
      throw e;
    });
    if (acknowledged >= replicas) return;
    throw notReplicated(
      this.where,
      operation,
      `${acknowledged} of ${replicas} replicas acknowledged it within ${replication.timeoutMs} ms (${replication.ackCommand}), so a failover to one could drop it; it does not count until they have it, and whoever reads the register then gets it`,
      `find out why the replicas lag (or are frozen); raise replicaAckTimeoutMs if they are only slow${replication.ackCommand === 'WAITAOF' ? '; replicas must run appendonly yes (WAITAOF counts a replica once it fsynced the write)' : ''}`,
      { replicas, acknowledged, command: replication.ackCommand },
    );
  }

  /**
   * A second connection, for the waits alone: a WAIT blocks its connection,
   * and the main one carries everything else (lease renewals among it).
   */
  private waitingConnection(): Redis {
    if (!this.waitConnection) {
      const connection = this.redis!.duplicate({ connectionName: 'twopc-decision-log-replica-wait' });
      connection.on('error', (e: Error) => {
        this.lastConnectionError = e.message;
      });
      this.waitConnection = connection;
    }
    return this.waitConnection;
  }

  /** Every record of each transaction, in order; the `d` entry replaced by the decision it stands for. */
  private async readTransactions(txIds: string[]): Promise<LogRecord[][]> {
    const refusal = this.life.refusal();
    if (refusal) throw refusal;
    const keys = txIds.flatMap((tx) => [this.keys.records(tx), this.keys.decision(tx)]);
    // A decision read back is acted on (recovery, a sweep, a status answer): it counts only once replicated too.
    const replies = await this.scriptReplicated<string[][]>('read', READ_TRANSACTIONS, keys, [], (r) => r.some(([decision]) => decision !== ''));
    return replies.map(([decision, ...entries], i) => {
      const list = this.keys.records(txIds[i]);
      return entries.map((entry, at) => {
        if (entry === DECISION_ENTRY) return this.decode(decision, this.keys.decision(txIds[i]));
        const sep = entry.indexOf(OP_SEPARATOR);
        return this.decode(entry.slice(sep + 1), `${list}[${at}]`);
      });
    });
  }

  /** One script call for the whole batch: one AOF write and one fsync on the server. */
  private runBatch(ops: WriteOp[]): Promise<string[]> {
    // A batch may hold writes made before and after this process changed leases: it goes under the
    // oldest, so a write made under a lease that was taken over is never sent under the new one.
    const tokens = ops.map((o) => o.token).filter((t) => t !== '').map(Number);
    const fence = tokens.length === 0 ? '' : String(Math.min(...tokens));
    // Without a lease the fence key is only a placeholder in the slot (never read).
    const keys = [this.keys.unfinished, this.keys.completed, this.keys.firstSeen, this.keys.stats, this.keys.lease(fence === '' ? 'none' : fence)];
    const args: Array<string | number> = [fence];
    for (const op of ops) {
      keys.push(this.keys.records(op.txId), this.keys.decision(op.txId));
      args.push(op.mode, op.txId, op.payload, op.type, op.at);
    }
    const decides = ops.some((o) => o.mode === 'd');
    const written = decides
      ? this.scriptReplicated<string[]>('decide', APPLY_BATCH, keys, args, () => true)
      : (this.script('append', APPLY_BATCH, keys, args) as Promise<string[]>);
    return written.catch((e: unknown) => {
      const reply = e instanceof TwopcError ? e.cause : e;
      if (reply instanceof Error && reply.message.startsWith(FENCED_REPLY)) {
        throw new TwopcError('fenced', `decision log ${this.where}: this coordinator's lease (token ${fence}) was taken over by another instance; its writes are refused (it must register a new lease)`, { token: Number(fence) });
      }
      throw e;
    });
  }
}
