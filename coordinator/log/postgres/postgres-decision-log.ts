import { randomBytes } from 'node:crypto';
import type { PoolClient } from 'pg';
import { TwopcError } from '../../engine/ports/protocol';
import type { LeaseStore } from '../../engine/ports/lease-store';
import type { AppendableRecord, CompactReport, DecisionLog, DecisionRecord, LogRecord, OpenReport, TxSnapshot } from '../../engine/ports/decision-log';
import { foldTransaction, foldUnfinished } from '../shared-store/fold-records';
import { appendOutcomeUnknown, logNotDurable, logUnreachable, notReplicated, volatileWarning } from '../log-errors';
import { OrderedBatcher } from '../shared-store/ordered-batcher';
import { decodeRecord, encodeAppend, encodeDecision } from '../shared-store/record-text';
import { redactUrl } from '../shared-store/redact-url';
import { DEFAULT_RETRY, retryWrite, type RetryPolicy } from '../shared-store/retry-write';
import { StoreLifecycle } from '../store-lifecycle';
import { migrateLogSchema } from './postgres-log-migrations';
import { resolvePostgresLogOptions, type PostgresDecisionLogOptions, type ResolvedPostgresLogOptions } from './postgres-log-options';
import { checkedOut, openLogPools, type LogPools } from './postgres-log-pools';
import { SentButUnanswered, isConnectionLost, isTransientPgError } from './postgres-log-failures';
import { PostgresLeaseStore } from './postgres-lease-store';
import * as sql from './postgres-log-sql';

export type { PostgresDecisionLogOptions } from './postgres-log-options';

/** One write in a batch. `opId` marks an append so a batch cut off mid-flight can be looked up. */
interface WriteOp {
  txId: string;
  kind: LogRecord['type'];
  json: string;
  at: number;
  opId: string | null;
  /** The fencing token of the lease this write was made under (null: none), fixed when it is made, not when it is sent. */
  token: number | null;
}

const APPENDS = 0;
const DECISIONS = 1;
// Forgotten per statement: bounds each DELETE's locks and WAL.
const COMPACT_CHUNK = 5_000;
// Unfinished transactions per statement: bounds how long one read takes, whatever the backlog.
const UNFINISHED_PAGE = 1_000;

/**
 * The decision log in a PostgreSQL database, for several coordinator
 * instances sharing one log: the register is the database's (a partial
 * unique index and `INSERT … ON CONFLICT DO NOTHING`), so two coordinators
 * deciding the same transaction get the same winner.
 *
 * - Decisions commit with `synchronous_commit=on` (set on the connection,
 *   whatever the server default), in batches: concurrent decisions share one
 *   statement, one commit and one WAL flush (group commit), and each caller
 *   gets the winner read back.
 * - Appends (begin, enlist, complete, hazard) are batched too, on their own
 *   connection with `synchronous_commit=off`: they need not be forced, and
 *   never wait behind a decision's flush. A later synchronous commit flushes
 *   the WAL before it, so a transaction's records are durable no later than
 *   its decision.
 * - A transaction's records keep the order they were appended: a write waits
 *   until no earlier write of its transaction is queued or in flight (see
 *   OrderedBatcher), and rows of a batch go in in order.
 * - A lost connection is retried until `retryDeadlineMs`: a decision batch is
 *   simply run again (the register makes that idempotent and returns the
 *   winner); an append batch that was sent but not answered is looked up by
 *   its op ids instead, and never sent twice.
 *
 * @example
 * const log = new PostgresDecisionLog({ connectionString: 'postgres://twopc@db/twopc', schema: 'twopc' });
 * await log.open(); // runs migrations; refuses a server with fsync=off unless allowVolatile
 * const winner = await log.decide({ txId, at: Date.now(), outcome: 'commit', source: 'engine', branches });
 */
export class PostgresDecisionLog implements DecisionLog {
  readonly kind = 'postgres';
  /** The database (without password) and schema, as messages name it. */
  readonly where: string;
  private readonly o: ResolvedPostgresLogOptions;
  private readonly life: StoreLifecycle;
  private readonly retry: RetryPolicy;
  private pools?: LogPools;
  private readonly batcher: OrderedBatcher<WriteOp, string | undefined>;
  /** Decisions this instance has in flight: racing deciders here share one write and its winner. */
  private readonly deciding = new Map<string, Promise<DecisionRecord>>();
  private readonly instance = randomBytes(6).toString('base64url');
  private ops = 0;
  /** The fencing token every write carries once this process holds a lease (see `leases`). */
  private fenceToken: number | null = null;
  /** Coordinator instances sharing this log: their leases, whose tokens fence this log's writes. */
  readonly leases: LeaseStore;

  constructor(options: PostgresDecisionLogOptions) {
    this.o = resolvePostgresLogOptions(options);
    this.where = `${redactUrl(this.o.connectionString)} (schema ${this.o.schema})`;
    this.life = new StoreLifecycle(this.where, 'PostgresDecisionLog');
    this.retry = { ...DEFAULT_RETRY, deadlineMs: this.o.retryDeadlineMs };
    const maxBatch = this.o.groupCommit ? this.o.maxBatch : 1;
    this.batcher = new OrderedBatcher<WriteOp, string | undefined>([
      { maxBatch, maxInFlight: 1, run: (ops) => this.runAppends(ops) },
      { maxBatch, maxInFlight: this.o.decisionBatchesInFlight, run: (ops) => this.runDecisions(ops) },
    ]);
    this.leases = new PostgresLeaseStore(this.o.schema, (operation, text, values) => this.read(operation, text, values), (token) => {
      this.fenceToken = token;
    });
  }

  /** Batches sent and the writes they carried, since construction (appends and decisions together). */
  get writeCounts(): { batches: number; writes: number } {
    return { batches: this.batcher.counts.batches, writes: this.batcher.counts.items };
  }

  open(): Promise<OpenReport> {
    return this.life.open(
      () => this.load(),
      () => this.endPools(),
    );
  }

  private async load(): Promise<OpenReport> {
    this.pools = openLogPools(this.o.connectionString, this.o.poolSize, this.o.callTimeoutMs);
    await this.withRetry('open', () =>
      checkedOut(this.pools!, 'forced', async (client) => {
        await this.checkDurability(client);
        await migrateLogSchema(client, this.o.schema, this.where);
      }),
    );
    const { rows } = await this.read('open', sql.counts(this.o.schema));
    return { records: Number(rows[0].records), unfinished: Number(rows[0].unfinished) };
  }

  /**
   * Refuses (unless allowVolatile) what would make an acknowledged decision
   * losable: a server with fsync off, connections on which our
   * synchronous_commit=on did not take (a pooler that drops startup options),
   * or standbys that commits do not wait for (a failover to one drops what it
   * had not received). Standbys attached later are caught by every decision
   * statement (see writeBatch).
   */
  private async checkDurability(client: PoolClient): Promise<void> {
    const { rows } = await client.query<{ fsync: string; synchronous_commit: string; unsynced_standbys: number }>(sql.durabilitySettings());
    const { fsync, synchronous_commit: syncCommit, unsynced_standbys: standbys } = rows[0];
    const refusal =
      syncCommit !== 'on'
        ? logNotDurable(
            this.where,
            `synchronous_commit is ${syncCommit} on this store's connections although it asks for on at connect (a connection pooler in between may drop startup options)`,
            'connect directly to PostgreSQL, or let the pooler pass the "options" startup parameter',
            { synchronous_commit: syncCommit },
          )
        : fsync !== 'on'
          ? logNotDurable(this.where, `the server runs with fsync=${fsync}, so a commit is not on disk when it returns`, 'set fsync = on in postgresql.conf and reload', { fsync })
          : standbys > 0
            ? logNotDurable(this.where, `${unsyncedText(standbys)}: a failover to one can drop a decision it had not received yet`, UNSYNCED_FIX, { standbys, synchronous_standby_names: '' })
            : undefined;
    if (!refusal) return;
    if (!this.o.allowVolatile) throw refusal;
    this.o.onWarning(volatileWarning(refusal));
  }

  // Async, so a refusal or a malformed record is a rejection; nothing before `submit` awaits, so
  // writes issued in one synchronous run still go in one batch.
  async append(record: AppendableRecord): Promise<void> {
    const refusal = this.life.refusal();
    if (refusal) throw refusal;
    const encoded = encodeAppend(record);
    const op: WriteOp = { txId: encoded.record.txId, kind: encoded.record.type, json: encoded.json, at: encoded.record.at, opId: `${this.instance}:${++this.ops}`, token: this.fenceToken };
    await this.batcher.submit(APPENDS, op);
  }

  async decide(decision: Omit<DecisionRecord, 'type'>): Promise<DecisionRecord> {
    const refusal = this.life.refusal();
    if (refusal) throw refusal;
    const encoded = encodeDecision(decision);
    const txId = encoded.record.txId;
    const pending = this.deciding.get(txId);
    if (pending) return pending;
    const op: WriteOp = { txId, kind: 'decision', json: encoded.json, at: encoded.record.at, opId: null, token: this.fenceToken };
    const winner = this.batcher
      .submit(DECISIONS, op)
      .then((json) => (json === encoded.json ? encoded.record : (this.decode(json!, `decision of ${txId}`) as DecisionRecord)))
      .finally(() => this.deciding.delete(txId));
    this.deciding.set(txId, winner);
    return winner;
  }

  async get(txId: string): Promise<TxSnapshot | undefined> {
    return foldTransaction(txId, await this.history(txId));
  }

  /**
   * Read in pages, each its own statement under `callTimeoutMs`: one
   * statement for the whole backlog would take longer the more transactions
   * are in doubt, and fail on every attempt exactly when recovery is needed
   * most. Not one snapshot, which a listing never needed: a transaction
   * completed or begun meanwhile is judged on the next pass either way.
   */
  async unfinished(): Promise<TxSnapshot[]> {
    const records: Array<{ seq: number; record: LogRecord }> = [];
    let after = '';
    for (;;) {
      const { rows } = await this.read('unfinished', sql.unfinishedPage(this.o.schema), [after, UNFINISHED_PAGE]);
      for (const r of rows) if (r.record !== null) records.push({ seq: Number(r.seq), record: this.decode(r.record as string, `seq ${r.seq}`) });
      if (Number(rows[0].n) < UNFINISHED_PAGE) break;
      after = rows[0].last as string;
    }
    // In `seq` order across pages, as one statement read them: transactions in the order first seen.
    records.sort((x, y) => x.seq - y.seq);
    return foldUnfinished(records.map((r) => r.record));
  }

  async history(txId: string): Promise<LogRecord[]> {
    const { rows } = await this.read('history', sql.history(this.o.schema), [txId]);
    return rows.map((r) => this.decode(r.record as string, `seq ${r.seq}`));
  }

  /** Deletes completed transactions past retention, in chunks; reports table bytes on disk (see `tableBytes`). */
  async compact(): Promise<CompactReport> {
    const before = Number((await this.read('compact', sql.tableBytes(this.o.schema))).rows[0].bytes);
    const cutoff = this.o.now() - this.o.completedRetentionMs;
    let forgotten = 0;
    for (;;) {
      const { rows } = await this.read('compact', sql.forgetCompleted(this.o.schema), [cutoff, COMPACT_CHUNK]);
      const n = Number(rows[0].forgotten);
      forgotten += n;
      if (n < COMPACT_CHUNK) break;
    }
    const { rows } = await this.read('compact', sql.counts(this.o.schema));
    const after = Number((await this.read('compact', sql.tableBytes(this.o.schema))).rows[0].bytes);
    return { forgotten, kept: Number(rows[0].transactions), bytesBefore: before, bytesAfter: after };
  }

  idle(): Promise<void> {
    return this.batcher.idle();
  }

  /**
   * Appends commit with synchronous_commit=off; a commit that writes WAL on a
   * synchronous_commit=on connection flushes the WAL up to it (and waits for
   * the synchronous standbys), and so every append committed before. See flushWal.
   */
  async makeDurable(): Promise<void> {
    const { rows } = await this.read('make durable', sql.flushWal());
    const standbys = Number(rows[0].unsynced_standbys);
    if (standbys > 0 && !this.o.allowVolatile) throw this.unsynced('make durable', standbys, 'so what it flushed is not durable in that sense');
  }

  /** Waits for writes in flight, then closes both pools. */
  close(): Promise<void> {
    return this.life.close(async () => {
      await this.batcher.idle();
      await this.endPools();
    });
  }

  private async endPools(): Promise<void> {
    const pools = this.pools;
    this.pools = undefined;
    if (pools) await Promise.all([pools.forced.end(), pools.relaxed.end()]);
  }

  private decode(json: string, location: string): LogRecord {
    return decodeRecord(json, this.where, location);
  }

  /** A read (or an idempotent write) on the forced pool, retried through lost connections. */
  private read(operation: string, text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> {
    const refusal = operation === 'open' ? undefined : this.life.refusal();
    if (refusal) return Promise.reject(refusal);
    return this.query(operation, text, values);
  }

  /** `read` without the open check: for the batches' own look-ups, which may still run while close() waits for them. */
  private query(operation: string, text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> {
    return this.withRetry(operation, () => checkedOut(this.pools!, 'forced', (client) => client.query(text, values)));
  }

  private withRetry<T>(operation: string, attempt: () => Promise<T>): Promise<T> {
    return retryWrite(attempt, isTransientPgError, this.retry, (e, n) =>
      e instanceof TwopcError ? e : logUnreachable(this.where, operation, e instanceof SentButUnanswered ? e.original : e, n),
    );
  }

  /**
   * One attempt at a batch on the `forced` (decisions) or `relaxed` (appends)
   * pool: a failure after the statement was sent is marked SentButUnanswered.
   */
  private async send(pool: 'forced' | 'relaxed', ops: WriteOp[]): Promise<{ rows: Array<{ tx_id: string; record: string | null }>; warned: boolean }> {
    // A batch may hold writes made before and after this process changed leases: it goes under the
    // oldest, so a write made under a lease that was taken over is never sent under the new one.
    const token = batchToken(ops);
    let warned = false;
    const result = await checkedOut(this.pools!, pool, async (client) => {
      // PostgreSQL reports a commit whose wait for the synchronous standbys was cancelled as a
      // success, with a WARNING (SQLSTATE 01000, whatever the message language): see runDecisions.
      const onNotice = (notice: { code?: string }) => {
        if (notice.code === '01000') warned = true;
      };
      client.on('notice', onNotice);
      try {
        return await client.query<{ tx_id: string; record: string | null }>({
          name: 'twopc_log_write',
          text: sql.writeBatch(this.o.schema),
          values: [ops.map((o) => o.txId), ops.map((o) => o.kind), ops.map((o) => o.json), ops.map((o) => o.at), ops.map((o) => o.opId), token, this.guardsStandbys(pool)],
        });
      } catch (e) {
        throw isConnectionLost(e) ? new SentButUnanswered(e) : e;
      } finally {
        client.removeListener('notice', onNotice);
      }
    });
    const refused = result.rows.find((r) => r.tx_id === null);
    if (refused?.record?.startsWith(sql.UNSYNCED_REPLY)) throw this.unsynced('decide', Number(refused.record.slice(sql.UNSYNCED_REPLY.length)), 'so nothing was written');
    if (refused) throw fenced(this.where, token);
    return { rows: result.rows, warned };
  }

  /** Decisions (the forced pool) are refused while standbys stream asynchronously, unless allowVolatile. */
  private guardsStandbys(pool: 'forced' | 'relaxed'): boolean {
    return pool === 'forced' && !this.o.allowVolatile;
  }

  /** `standbys` stream from the server and no commit waits for them: `outcome` says what became of the call's write. */
  private unsynced(operation: string, standbys: number, outcome: string): TwopcError {
    return notReplicated(this.where, operation, `${unsyncedText(standbys)}: a failover to one could drop it, ${outcome}`, UNSYNCED_FIX, { standbys });
  }

  /**
   * A decision batch. Run again after any failure, the statement is harmless:
   * a decision that did commit the first time is found by ON CONFLICT and
   * returned as the winner — which is why a resend cannot change an outcome.
   * Sorted by transaction, so two coordinators' batches take the unique-index
   * locks in the same order.
   *
   * A commit's wait for the synchronous standbys can be cut short: a cancel
   * (pg_cancel_backend, or a cancel reaching the backend just then) makes
   * PostgreSQL report the commit as a success with a WARNING; a terminated
   * backend or a server shutdown commits it locally and drops the connection.
   * Either way the row is visible on the primary and maybe not on the
   * standby. So when this batch saw such a warning, needed a retry (what it
   * reads back may be its own earlier attempt, committed that way), or
   * returns winners it did not write, one more synchronous commit (flushWal)
   * runs before it resolves: it waits until the standbys have everything up
   * to itself, winners included — or fails like any decide that timed out.
   */
  private async runDecisions(ops: WriteOp[]): Promise<Array<string | undefined>> {
    const sorted = [...ops].sort((a, b) => (a.txId < b.txId ? -1 : a.txId > b.txId ? 1 : 0));
    const winners = new Map<string, string>();
    let attempts = 0;
    let warned = false;
    const rows = await this.withRetry('decide', async () => {
      attempts += 1;
      const sent = await this.send('forced', sorted);
      warned ||= sent.warned;
      return sent.rows;
    });
    const mine = new Map(ops.map((o) => [o.txId, o.json]));
    for (const r of rows) winners.set(r.tx_id, r.record ?? mine.get(r.tx_id)!);
    // Winners another session committed while our statement ran: invisible to its snapshot, visible to a new one.
    const missing = ops.filter((o) => !winners.has(o.txId)).map((o) => o.txId);
    if (missing.length > 0) {
      const { rows: late } = await this.query('decide', sql.readDecisions(this.o.schema), [missing]);
      for (const r of late) winners.set(r.tx_id as string, r.record as string);
    }
    if (this.guardsStandbys('forced') && (warned || attempts > 1 || missing.length > 0 || rows.some((r) => r.record !== null))) {
      await this.query('decide', sql.flushWal());
    }
    return ops.map((o) => {
      const w = winners.get(o.txId);
      if (w === undefined) throw logUnreachable(this.where, 'decide', new Error(`no decision for ${o.txId} after writing it`), 1);
      return w;
    });
  }

  /**
   * An append batch. A connection that broke before the statement was sent,
   * or a statement the server refused (rolled back), is retried. One that
   * broke after sending may have committed: the batch is looked up by its op
   * ids (it committed as a whole or not at all) and resent never — a record
   * must not be stored twice.
   */
  private async runAppends(ops: WriteOp[]): Promise<undefined[]> {
    const done = ops.map(() => undefined);
    try {
      await retryWrite(
        () => this.send('relaxed', ops).then(() => undefined),
        (e) => !(e instanceof SentButUnanswered) && isTransientPgError(e),
        this.retry,
        (e, n) => (e instanceof SentButUnanswered || e instanceof TwopcError ? e : logUnreachable(this.where, 'append', e, n)),
      );
      return done;
    } catch (e) {
      if (!(e instanceof SentButUnanswered)) throw e;
      const { rows } = await this.query('append', sql.findAppends(this.o.schema), [[ops[0].txId], [ops[0].opId]]);
      if (rows.length > 0) return done;
      throw appendOutcomeUnknown(this.where, e.original);
    }
  }
}

/** The oldest lease among a batch's writes (null when none was made under a lease). */
function batchToken(ops: readonly WriteOp[]): number | null {
  let token: number | null = null;
  for (const o of ops) if (o.token !== null && (token === null || o.token < token)) token = o.token;
  return token;
}

const UNSYNCED_FIX =
  "name the standbys a failover may promote in synchronous_standby_names (e.g. 'ANY 1 (standby1, standby2)'), reload, and fail over only to a synchronous standby";

function unsyncedText(standbys: number): string {
  return `${standbys} standby${standbys === 1 ? '' : 's'} stream${standbys === 1 ? 's' : ''} from this server (pg_stat_replication) but synchronous_standby_names is empty, so no commit waits for ${standbys === 1 ? 'it' : 'them'}`;
}

function fenced(where: string, token: number | null): TwopcError {
  return new TwopcError(
    'fenced',
    `decision log ${where}: this coordinator's lease (token ${token}) was taken over by another instance; its writes are refused (it must register a new lease)`,
    { token },
  );
}
