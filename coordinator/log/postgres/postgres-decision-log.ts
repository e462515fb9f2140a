import type { PoolClient } from 'pg';
import type { LeaseStore } from '../../engine/ports/lease-store';
import type { CompactReport, LogRecord, OpenReport } from '../../engine/ports/decision-log';
import { redactUrl } from '../shared-store/redact-url';
import { SharedDecisionLog, type SharedWrite, type WriteLane } from '../shared-store/shared-decision-log';
import { durabilityProblem, unsyncedStandbys, type PostgresDurability } from './postgres-durability-check';
import { migrateLogSchema } from './postgres-log-migrations';
import { resolvePostgresLogOptions, type PostgresDecisionLogOptions, type ResolvedPostgresLogOptions } from './postgres-log-options';
import { checkedOut, openLogPools, type LogPools } from './postgres-log-pools';
import { SentButUnanswered, isTransientPgError } from './postgres-log-failures';
import { PostgresLogWriter } from './postgres-log-writer';
import { PostgresLeaseStore } from './postgres-lease-store';
import * as sql from './postgres-log-sql';

export type { PostgresDecisionLogOptions } from './postgres-log-options';

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
 *   its op ids instead, and never sent twice (see PostgresLogWriter).
 *
 * @example
 * const log = new PostgresDecisionLog({ connectionString: 'postgres://twopc@db/twopc', schema: 'twopc' });
 * await log.open(); // runs migrations; refuses a server with fsync=off unless allowVolatile
 * const winner = await log.decide({ txId, at: Date.now(), outcome: 'commit', source: 'engine', branches });
 */
export class PostgresDecisionLog extends SharedDecisionLog<ResolvedPostgresLogOptions> {
  readonly kind = 'postgres';
  readonly leases: LeaseStore;
  private pools?: LogPools;
  private readonly writer: PostgresLogWriter;

  constructor(options: PostgresDecisionLogOptions) {
    const o = resolvePostgresLogOptions(options);
    super({
      options: o,
      where: `${redactUrl(o.connectionString)} (schema ${o.schema})`,
      className: 'PostgresDecisionLog',
      inFlight: { appends: 1, decisions: o.decisionBatchesInFlight },
    });
    this.leases = new PostgresLeaseStore(o.schema, (operation, text, values) => this.read(operation, text, values), (token) => this.fenceWith(token));
    this.writer = new PostgresLogWriter({
      where: this.where,
      schema: o.schema,
      allowVolatile: o.allowVolatile,
      retry: this.retry,
      pools: () => this.pools!,
      withRetry: (operation, attempt) => this.withRetry(operation, attempt),
      query: (operation, text, values) => this.query(operation, text, values),
      fenced: (token) => this.fenced(token),
    });
  }

  protected async connect(): Promise<OpenReport> {
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

  /** Refuses (unless allowVolatile) what would make an acknowledged decision losable: see durabilityProblem. */
  private async checkDurability(client: PoolClient): Promise<void> {
    const { rows } = await client.query<PostgresDurability>(sql.durabilitySettings());
    this.refuseIfVolatile(durabilityProblem(this.where, rows[0]));
  }

  protected writeBatch(lane: WriteLane, ops: SharedWrite[]): Promise<Array<string | undefined>> {
    return lane === 'decisions' ? this.writer.decisions(ops) : this.writer.appends(ops);
  }

  /**
   * Read in pages, each its own statement under `callTimeoutMs`: one
   * statement for the whole backlog would take longer the more transactions
   * are in doubt, and fail on every attempt exactly when recovery is needed
   * most. Not one snapshot, which a listing never needed: a transaction
   * completed or begun meanwhile is judged on the next pass either way.
   */
  protected async unfinishedRecords(): Promise<LogRecord[]> {
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
    return records.map((r) => r.record);
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

  /**
   * Appends commit with synchronous_commit=off; a commit that writes WAL on a
   * synchronous_commit=on connection flushes the WAL up to it (and waits for
   * the synchronous standbys), and so every append committed before. See flushWal.
   */
  async makeDurable(): Promise<void> {
    const { rows } = await this.read('make durable', sql.flushWal());
    const standbys = Number(rows[0].unsynced_standbys);
    if (standbys > 0 && !this.o.allowVolatile) throw unsyncedStandbys(this.where, 'make durable', standbys, 'so what it flushed is not durable in that sense');
  }

  /** Closes both pools. */
  protected async disconnect(): Promise<void> {
    const pools = this.pools;
    this.pools = undefined;
    if (pools) await Promise.all([pools.forced.end(), pools.relaxed.end()]);
  }

  protected decisionLocation(txId: string): string {
    return `decision of ${txId}`;
  }

  protected isTransient(e: unknown): boolean {
    return isTransientPgError(e);
  }

  protected override failureReason(e: unknown): unknown {
    return e instanceof SentButUnanswered ? e.original : e;
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
}
