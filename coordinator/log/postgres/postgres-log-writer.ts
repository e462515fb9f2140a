import { TwopcError } from '../../engine/ports/protocol';
import { appendOutcomeUnknown, logUnreachable } from '../log-errors';
import { oldestToken, type SharedWrite } from '../shared-store/shared-decision-log';
import { retryWrite, type RetryPolicy } from '../shared-store/retry-write';
import { unsyncedStandbys } from './postgres-durability-check';
import { SentButUnanswered, isConnectionLost, isTransientPgError } from './postgres-log-failures';
import { checkedOut, type LogPools } from './postgres-log-pools';
import * as sql from './postgres-log-sql';

/** What the batches need of their log. */
export interface LogWriterContext {
  readonly where: string;
  readonly schema: string;
  readonly allowVolatile: boolean;
  readonly retry: RetryPolicy;
  /** The open pools. */
  pools(): LogPools;
  /** The log's retry loop (through transient failures until retryDeadlineMs, then log-unavailable). */
  withRetry<T>(operation: string, attempt: () => Promise<T>): Promise<T>;
  /** A statement on the forced pool, retried, without the open check: the batches' own look-ups may still run while close() waits for them. */
  query(operation: string, text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
  /** The error of a batch refused for a lease taken over. */
  fenced(token: number | null): TwopcError;
}

/** The PostgreSQL log's write path: decision batches on the `forced` pool, append batches on the `relaxed` one. */
export class PostgresLogWriter {
  constructor(private readonly ctx: LogWriterContext) {}

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
  async decisions(ops: SharedWrite[]): Promise<string[]> {
    const sorted = [...ops].sort((a, b) => (a.txId < b.txId ? -1 : a.txId > b.txId ? 1 : 0));
    const winners = new Map<string, string>();
    let attempts = 0;
    let warned = false;
    const rows = await this.ctx.withRetry('decide', async () => {
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
      const { rows: late } = await this.ctx.query('decide', sql.readDecisions(this.ctx.schema), [missing]);
      for (const r of late) winners.set(r.tx_id as string, r.record as string);
    }
    if (this.guardsStandbys('forced') && (warned || attempts > 1 || missing.length > 0 || rows.some((r) => r.record !== null))) {
      await this.ctx.query('decide', sql.flushWal());
    }
    return ops.map((o) => {
      const w = winners.get(o.txId);
      if (w === undefined) throw logUnreachable(this.ctx.where, 'decide', new Error(`no decision for ${o.txId} after writing it`), 1);
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
  async appends(ops: SharedWrite[]): Promise<undefined[]> {
    const done = ops.map(() => undefined);
    try {
      await retryWrite(
        () => this.send('relaxed', ops).then(() => undefined),
        (e) => !(e instanceof SentButUnanswered) && isTransientPgError(e),
        this.ctx.retry,
        (e, n) => (e instanceof SentButUnanswered || e instanceof TwopcError ? e : logUnreachable(this.ctx.where, 'append', e, n)),
      );
      return done;
    } catch (e) {
      if (!(e instanceof SentButUnanswered)) throw e;
      const { rows } = await this.ctx.query('append', sql.findAppends(this.ctx.schema), [[ops[0].txId], [ops[0].opId]]);
      if (rows.length > 0) return done;
      throw appendOutcomeUnknown(this.ctx.where, e.original);
    }
  }

  /**
   * One attempt at a batch on the `forced` (decisions) or `relaxed` (appends)
   * pool: a failure after the statement was sent is marked SentButUnanswered.
   */
  private async send(pool: 'forced' | 'relaxed', ops: SharedWrite[]): Promise<{ rows: Array<{ tx_id: string; record: string | null }>; warned: boolean }> {
    // A batch may hold writes made before and after this process changed leases: it goes under the
    // oldest, so a write made under a lease that was taken over is never sent under the new one.
    const token = oldestToken(ops);
    let warned = false;
    const result = await checkedOut(this.ctx.pools(), pool, async (client) => {
      // PostgreSQL reports a commit whose wait for the synchronous standbys was cancelled as a
      // success, with a WARNING (SQLSTATE 01000, whatever the message language): see decisions().
      const onNotice = (notice: { code?: string }) => {
        if (notice.code === '01000') warned = true;
      };
      client.on('notice', onNotice);
      try {
        return await client.query<{ tx_id: string; record: string | null }>({
          name: 'twopc_log_write',
          text: sql.writeBatch(this.ctx.schema),
          values: [ops.map((o) => o.txId), ops.map((o) => o.type), ops.map((o) => o.json), ops.map((o) => o.at), ops.map((o) => o.opId), token, this.guardsStandbys(pool)],
        });
      } catch (e) {
        throw isConnectionLost(e) ? new SentButUnanswered(e) : e;
      } finally {
        client.removeListener('notice', onNotice);
      }
    });
    const refused = result.rows.find((r) => r.tx_id === null);
    if (refused?.record?.startsWith(sql.UNSYNCED_REPLY)) throw unsyncedStandbys(this.ctx.where, 'decide', Number(refused.record.slice(sql.UNSYNCED_REPLY.length)), 'so nothing was written');
    if (refused) throw this.ctx.fenced(token);
    return { rows: result.rows, warned };
  }

  /** Decisions (the forced pool) are refused while standbys stream asynchronously, unless allowVolatile. */
  private guardsStandbys(pool: 'forced' | 'relaxed'): boolean {
    return pool === 'forced' && !this.ctx.allowVolatile;
  }
}
