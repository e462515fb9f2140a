import type Redis from 'ioredis';
import { TwopcError } from '../../engine/ports/protocol';
import type { LeaseStore } from '../../engine/ports/lease-store';
import type { CompactReport, LogRecord, OpenReport } from '../../engine/ports/decision-log';
import { logNotDurable, logUnreachable, newerLayout } from '../log-errors';
import { redactUrl } from '../shared-store/redact-url';
import { oldestToken, SharedDecisionLog, type SharedWrite, type WriteLane } from '../shared-store/shared-decision-log';
import { durabilityProblem, inspectRedisDurability, type RedisDurability } from './redis-durability-check';
import { DECISION_ENTRY, OP_SEPARATOR, logKeys, type LogKeys } from './redis-keys';
import { openLogConnection } from './redis-log-connection';
import { isCommandTimeout, isTransientRedisError } from './redis-log-failures';
import { resolveRedisLogOptions, type RedisDecisionLogOptions, type ResolvedRedisLogOptions } from './redis-log-options';
import { APPLY_BATCH, FENCED_REPLY, FORGET_COMPLETED, READ_TRANSACTIONS, runScript, type LuaScript } from './redis-scripts';
import { RedisLeaseStore } from './redis-lease-store';
import { ReplicaGate, replicaAckCommand, type RedisReplication } from './redis-replicas';

export type { RedisDecisionLogOptions } from './redis-log-options';

/** The data layout this code writes; kept in the meta hash. */
const LAYOUT_VERSION = 1;
// Transactions per read or compaction script call: bounds how long one script holds the server.
const CHUNK = 500;

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
export class RedisDecisionLog extends SharedDecisionLog<ResolvedRedisLogOptions> {
  readonly kind = 'redis';
  readonly leases: LeaseStore;
  /** What open() found about the server's persistence. */
  durability?: RedisDurability;
  private readonly keys: LogKeys;
  private redis?: Redis;
  /** The waits for replicas; undefined when the store cannot count them (INFO unavailable, allowVolatile). */
  private gate?: ReplicaGate;
  private lastConnectionError?: string;

  constructor(options: RedisDecisionLogOptions) {
    const o = resolveRedisLogOptions(options);
    super({ options: o, where: `${redactUrl(o.url)} (namespace ${o.namespace})`, className: 'RedisDecisionLog', inFlight: { both: o.batchesInFlight } });
    this.keys = logKeys(o.namespace);
    // A new token or a takeover that a failover dropped could be issued again, to another process
    // (a takeover that took nothing answers 0).
    const replicated = new Set(['lease register', 'lease takeover']);
    this.leases = new RedisLeaseStore(
      this.keys,
      (operation, s, keys, args) => (replicated.has(operation) ? this.scriptReplicated<unknown>(operation, s, keys, args, (r) => r !== 0) : this.script(operation, s, keys, args)),
      (token) => this.fenceWith(token),
    );
  }

  /** How this store waits for the master's replicas; undefined when it cannot count them (INFO unavailable, allowVolatile). */
  get replication(): RedisReplication | undefined {
    return this.gate?.replication;
  }

  protected async connect(): Promise<OpenReport> {
    const redis = openLogConnection(this.o.url, this.o.callTimeoutMs);
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
      const replication = { ackCommand: replicaAckCommand(this.durability.version), timeoutMs: this.o.replicaAckTimeoutMs, replicas: this.durability.replicas };
      this.gate = new ReplicaGate(replication, {
        where: this.where,
        fenceKey: this.keys.replicaFence,
        main: () => this.redis!,
        isOpen: () => this.life.isOpen,
        onConnectionError: (e) => {
          this.lastConnectionError = e.message;
        },
      });
    }
    const problem = durabilityProblem(this.durability);
    this.refuseIfVolatile(problem ? logNotDurable(this.where, problem.found, problem.fix, { ...this.durability }) : undefined);
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
  protected async unfinishedRecords(): Promise<LogRecord[]> {
    const all: LogRecord[] = [];
    let after = '-inf';
    for (;;) {
      const page = await this.command('unfinished', (r) => r.zrangebyscore(this.keys.unfinished, after, '+inf', 'WITHSCORES', 'LIMIT', 0, CHUNK));
      const txIds = page.filter((_, i) => i % 2 === 0);
      if (txIds.length > 0) for (const records of await this.readTransactions(txIds)) all.push(...records);
      if (txIds.length < CHUNK) break;
      after = `(${page[page.length - 1]}`;
    }
    return all;
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
      if (replicas > 0) await this.gate!.confirm('make durable', replicas);
    });
  }

  /** Closes the replica waits' connection, then the main one. */
  protected async disconnect(): Promise<void> {
    await this.gate?.close();
    await this.redis?.quit().catch(() => this.redis?.disconnect());
  }

  protected override async abandon(): Promise<void> {
    this.redis?.disconnect();
    this.gate?.drop();
  }

  protected decisionLocation(txId: string): string {
    return this.keys.decision(txId);
  }

  protected isTransient(e: unknown): boolean {
    return isTransientRedisError(e);
  }

  /**
   * A command that timed out leaves its connection suspect (an answer may
   * never come on it, and every later command would queue behind it): the
   * connection is made again, and what was sent but not answered is resent
   * there — safe, see APPLY_BATCH.
   */
  protected override attemptFailed(e: unknown): void {
    if (isCommandTimeout(e) && this.life.isOpen) this.redis?.disconnect(true);
  }

  protected override failureReason(e: unknown): unknown {
    return this.lastConnectionError && e instanceof Error && e.name !== 'ReplyError' ? new Error(`${e.message} (last connection error: ${this.lastConnectionError})`, { cause: e }) : e;
  }

  /** Runs `fn` on the connection, retried through lost connections; refuses when the store is not open. */
  private command<T>(operation: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
    const refusal = this.life.refusal();
    if (refusal) return Promise.reject(refusal);
    return this.withRetry(operation, () => fn(this.redis!));
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
      if (replicas > 0 && replicated(result)) await this.gate!.confirm(operation, replicas);
      return result;
    });
  }

  /** Connected replicas now (0 without a way to count them: allowVolatile on a server that denies INFO). */
  private async replicasNow(): Promise<number> {
    return this.gate ? this.gate.replicasNow() : 0;
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

  /** One script call for the whole batch (appends and decisions alike): one AOF write and one fsync on the server. */
  protected writeBatch(_lane: WriteLane, ops: SharedWrite[]): Promise<string[]> {
    // A batch may hold writes made before and after this process changed leases: it goes under the
    // oldest, so a write made under a lease that was taken over is never sent under the new one.
    const token = oldestToken(ops);
    const fence = token === null ? '' : String(token);
    // Without a lease the fence key is only a placeholder in the slot (never read).
    const keys = [this.keys.unfinished, this.keys.completed, this.keys.firstSeen, this.keys.stats, this.keys.lease(fence === '' ? 'none' : fence)];
    const args: Array<string | number> = [fence];
    for (const op of ops) {
      keys.push(this.keys.records(op.txId), this.keys.decision(op.txId));
      const decision = op.type === 'decision';
      // An append's entry carries its op id: what lets a resent append find itself already stored.
      args.push(decision ? 'd' : 'a', op.txId, decision ? op.json : `${op.opId}${OP_SEPARATOR}${op.json}`, op.type, op.at);
    }
    const written = ops.some((o) => o.type === 'decision')
      ? this.scriptReplicated<string[]>('decide', APPLY_BATCH, keys, args, () => true)
      : (this.script('append', APPLY_BATCH, keys, args) as Promise<string[]>);
    return written.then(
      // '' means the write's own record stands (a decision that won, an append); otherwise the reply is the decision that was there first.
      (replies) => replies.map((reply, i) => (reply === '' ? ops[i].json : reply)),
      (e: unknown) => {
        const reply = e instanceof TwopcError ? e.cause : e;
        if (reply instanceof Error && reply.message.startsWith(FENCED_REPLY)) throw this.fenced(token);
        throw e;
      },
    );
  }
}
