import { TransactionAbortedError, TwopcError, isTwopcError } from '../../errors';
import type { Vote } from '../../engine/types';
import { hasPrefix, isTxId, parseGid, validateGid, validatePrefix } from '../gid';
import type { BranchRef, Participant, PreparedBranch } from '../participant';
import { BranchClient, HeldBranch } from './branch-client';
import type { BackendIdentity, ConnectionContext } from './postgres-connection';
import { connect, ensureOldBackendGone, withPooledClient } from './postgres-connection';
import type { PgErrorClass } from './postgres-errors';
import { classifyPgError } from './postgres-errors';
import { migrateMarkerSchema } from './postgres-migrations';
import type { PostgresParticipantOptions, ResolvedPostgresOptions } from './postgres-options';
import { parsePostgresOptions } from './postgres-options';
import { resultsOf } from './postgres-pool';
import * as sql from './postgres-sql';

const PRUNE_BATCH = 1000;

/**
 * A PostgreSQL database the coordinator reaches directly (SPEC §3): branches
 * run on connections it holds, phase 1 is `PREPARE TRANSACTION`, phase 2 is
 * `COMMIT/ROLLBACK PREPARED` by GID from any connection of the pool.
 *
 * @example
 * const orders = new PostgresParticipant({ name: 'orders', pool: new Pool({ connectionString }) });
 * await orders.start();
 * const branch = await orders.openBranch({ txId, branchId: 1, gid, participant: 'orders' });
 * await branch.query('INSERT INTO orders (id) VALUES ($1)', [42]);
 * const vote = await orders.prepare(ref); // then commit(ref) or rollback(ref), as decided
 */
export class PostgresParticipant implements Participant {
  readonly name: string;
  private readonly options: ResolvedPostgresOptions;
  private readonly ctx: ConnectionContext;
  /** Branches whose connection is held, or whose PREPARE / one-phase COMMIT is in flight. */
  private readonly held = new Map<string, HeldBranch>();
  /**
   * Branches whose connection was lost while PREPARE (or a one-phase COMMIT)
   * may have been on the wire: until that backend is gone, the statement may
   * still take effect, so rollback and commit wait for it first.
   */
  private readonly inDoubtBackends = new Map<string, BackendIdentity>();
  private closed = false;
  private readonly onPoolError = (err: Error): void => this.options.onConnectionError?.(err);

  constructor(options: PostgresParticipantOptions) {
    this.options = parsePostgresOptions(options);
    this.name = this.options.name;
    this.ctx = { pool: this.options.pool, participant: this.name, onConnectionError: this.options.onConnectionError };
    // pg's Pool emits `error` when an idle client's server goes away; unheard, that crashes the process.
    this.options.pool.on?.('error', this.onPoolError);
  }

  /**
   * Checks that the server allows prepared transactions, then migrates the
   * marker table. Safe to run from several processes at once.
   */
  async start(): Promise<void> {
    await withPooledClient(this.ctx, async (client) => {
      const settings = resultsOf(await client.query(sql.serverSettings()))[0].rows[0];
      if (Number(settings.max_prepared_transactions) <= 0) {
        throw new TwopcError(
          'prepared-transactions-disabled',
          `participant "${this.name}" (database "${settings.database}"): max_prepared_transactions is 0, so PostgreSQL refuses PREPARE TRANSACTION and this database cannot take part in two-phase commit. ` +
            `Set max_prepared_transactions in postgresql.conf to a value above 0 (e.g. equal to max_connections, here ${settings.max_connections}) and restart PostgreSQL: the setting only changes at server start.`,
          { participant: this.name, database: settings.database },
        );
      }
      await migrateMarkerSchema(client, this.options.schema);
    }).catch((e: unknown) => {
      if (isTwopcError(e)) throw e;
      const c = classifyPgError(e);
      const code = c.kind === 'connection-lost' ? 'participant-unavailable' : 'invalid-config';
      throw new TwopcError(code, `participant "${this.name}": cannot prepare the marker table in schema "${this.options.schema}": ${c.message}`, { participant: this.name, sqlState: c.sqlState }, { cause: e });
    });
  }

  /**
   * Checks a connection out and BEGINs the branch on it. The connection stays
   * held (idle in transaction while the application works) until the branch's
   * prepare, one-phase commit or rollback.
   */
  async openBranch(branch: BranchRef): Promise<BranchClient> {
    if (this.closed) throw new TwopcError('shutting-down', `participant "${this.name}" is closed`, { participant: this.name });
    const ref = checkBranchRef(branch);
    this.assertNotOpen(ref.gid);
    const client = await connect(this.ctx);
    let held: HeldBranch;
    try {
      held = await HeldBranch.begin(ref, this.name, client, this.options.onConnectionError);
    } catch (e) {
      const c = classifyPgError(e);
      throw new TwopcError('participant-unavailable', `participant "${this.name}": cannot begin branch ${ref.gid}: ${c.message}`, { participant: this.name, gid: ref.gid, sqlState: c.sqlState }, { cause: e });
    }
    if (this.held.has(ref.gid) || this.closed) {
      await held.rollbackAndRelease();
      this.assertNotOpen(ref.gid);
      throw new TwopcError('shutting-down', `participant "${this.name}" is closed`, { participant: this.name });
    }
    this.held.set(ref.gid, held);
    return new BranchClient(held);
  }

  async prepare(branch: BranchRef): Promise<Vote> {
    const held = this.held.get(branch.gid);
    if (!held) return this.voteForUnheld(branch);
    // A repeated call while the first is in flight gets the same answer.
    if (held.preparing) return held.preparing;
    if (held.phase !== 'active') return { vote: 'no', reason: `branch ${branch.gid} is ${held.phase}, not active` };
    held.phase = 'preparing';
    held.preparing = this.prepareHeld(held).finally(() => this.held.delete(held.gid));
    return held.preparing;
  }

  async commit(branch: BranchRef, options: { onePhase?: boolean } = {}): Promise<void> {
    const gid = validateGid(branch.gid);
    const held = this.held.get(gid);
    if (options.onePhase) return this.commitOnePhase(branch, held);
    if (held?.preparing) await held.preparing;
    else if (held) throw new TwopcError('state-conflict', `branch ${gid} was never prepared: only a one-phase commit can end it with a commit`, { gid, phase: held.phase });
    await this.finishPrepared(branch, 'commit');
  }

  async rollback(branch: BranchRef): Promise<void> {
    const gid = validateGid(branch.gid);
    const held = this.held.get(gid);
    if (held?.phase === 'active') return this.rollbackHeld(held);
    if (held?.committing) throw new TwopcError('state-conflict', `branch ${gid} is being committed in one phase`, { gid });
    // Let a PREPARE in flight finish, then undo whatever it did by GID.
    if (held?.preparing) await held.preparing;
    await this.finishPrepared(branch, 'rollback');
  }

  /** Prepared transactions of this database whose GID is a valid GID of `prefix`. */
  async listPrepared(prefix: string): Promise<PreparedBranch[]> {
    validatePrefix(prefix);
    const rows = await this.unavailableOnError('list prepared transactions', () =>
      withPooledClient(this.ctx, async (client) => resultsOf(await client.query(sql.listPrepared(), [`${prefix}_`]))[0].rows),
    );
    return rows.filter((row) => hasPrefix(String(row.gid), prefix)).map((row) => ({ gid: String(row.gid), preparedAt: Number(row.prepared_at) }));
  }

  /**
   * Deletes markers older than `olderThanMs` (default: markerRetentionMs), in
   * batches so no statement holds many row locks or a long snapshot.
   * @returns how many were deleted.
   */
  async pruneMarkers(olderThanMs: number = this.options.markerRetentionMs): Promise<number> {
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
      throw new TwopcError('invalid-input', `olderThanMs must be a number >= 0 (got ${olderThanMs})`, { field: 'olderThanMs' });
    }
    return this.unavailableOnError('prune markers', () =>
      withPooledClient(this.ctx, async (client) => {
        let total = 0;
        for (;;) {
          const deleted = resultsOf(await client.query(sql.pruneMarkers(this.options.schema), [olderThanMs, PRUNE_BATCH]))[0].rowCount ?? 0;
          total += deleted;
          if (deleted < PRUNE_BATCH) return total;
        }
      }),
    );
  }

  /**
   * Rolls back the branches still held (never prepared) and gives their
   * connections back; waits for PREPAREs in flight. Prepared branches stay
   * prepared: only a decision ends them. Does not end the caller's pool.
   */
  async close(): Promise<void> {
    this.closed = true;
    const pending = [...this.held.values()].map((held) => {
      if (held.phase === 'active') return this.rollbackHeld(held, 'the participant was closed');
      return held.preparing ?? held.committing;
    });
    await Promise.allSettled(pending);
    this.options.pool.removeListener?.('error', this.onPoolError);
  }

  private assertNotOpen(gid: string): void {
    if (this.held.has(gid)) throw new TwopcError('state-conflict', `branch ${gid} is already open (a GID is never reused)`, { gid });
  }

  // Phase 1 on the held connection. Never throws: every failure is a "no".
  private async prepareHeld(held: HeldBranch): Promise<Vote> {
    if (held.connectionLost) {
      // Nothing was sent, so nothing can have been prepared; the server rolls
      // the branch back when it notices the connection is gone.
      held.release(held.connectionLost);
      held.end('rolled-back', 'the connection was lost before PREPARE');
      return { vote: 'no', reason: `the branch's connection was lost before PREPARE: ${held.connectionLost.message}` };
    }
    try {
      const client = held.connection();
      if (!held.mayHaveWritten) {
        // Every statement was a read: ask whether the branch has an xid, and
        // if not end it with a plain COMMIT (no prepared state, no WAL flush).
        // A branch that did write pays this one extra round trip.
        const wrote = resultsOf(await client.query(sql.probeWrites()))[2]?.rows[0]?.wrote;
        if (wrote === false) return await this.commitReadOnly(held);
      }
      // One round trip: marker (only if the branch wrote) + PREPARE. In a failed
      // block the guard fails first; PREPARE's own tag is checked anyway, since
      // PostgreSQL answers a PREPARE in a failed block with ROLLBACK, no error.
      const [, , insert, prepare] = resultsOf(await client.query(sql.prepareBranch(this.options.schema, held.gid, held.ref.txId)));
      if (prepare?.command !== 'PREPARE') {
        await held.rollbackAndRelease();
        held.end('rolled-back', 'PREPARE answered ROLLBACK: the transaction block had failed');
        return { vote: 'no', ...this.failureCause(held, { kind: 'wrong-state', message: `PREPARE answered ${prepare?.command ?? 'nothing'}: the transaction block had failed` }, true) };
      }
      if (insert.rowCount === 0) {
        // Prepared without writes (the tags suggested writes, none happened):
        // finish it at once, on the same connection, and leave it out of phase 2.
        await client.query(sql.commitPrepared(held.gid));
        held.release();
        held.end('committed');
        return { vote: 'read-only' };
      }
      held.release();
      held.end('prepared');
      return { vote: 'yes' };
    } catch (e) {
      return this.prepareFailed(held, e);
    }
  }

  private async commitReadOnly(held: HeldBranch): Promise<Vote> {
    const [, , commit] = resultsOf(await held.connection().query(sql.commitLocal()));
    held.release();
    if (commit?.command !== 'COMMIT') {
      held.end('rolled-back', 'COMMIT answered ROLLBACK');
      return { vote: 'no', reason: `the read-only branch's COMMIT answered ${commit?.command ?? 'nothing'}` };
    }
    held.end('committed');
    return { vote: 'read-only' };
  }

  private async prepareFailed(held: HeldBranch, err: unknown): Promise<Vote> {
    const c = classifyPgError(err);
    if (c.kind === 'connection-lost') {
      // The statement may have reached the server: the old backend may yet
      // complete the PREPARE. The abort that follows this "no" rolls it back by
      // GID, after waiting for that backend to be gone (see finishPrepared).
      this.inDoubtBackends.set(held.gid, held.backend);
      held.release(err instanceof Error ? err : new Error(c.message));
      held.end('rolled-back', `the connection was lost during PREPARE: ${c.message}`);
      return { vote: 'no', reason: `the connection was lost during PREPARE (it may have taken effect; the branch is rolled back by GID): ${c.message}`, ...(c.sqlState ? { sqlState: c.sqlState } : {}) };
    }
    // The server answered with an error, so nothing is prepared by this call
    // (a failing PREPARE aborts its transaction; a failed read-only COMMIT
    // PREPARED leaves a prepared branch the abort's ROLLBACK PREPARED ends).
    // End any failed block so the connection goes back to the pool clean.
    await held.rollbackAndRelease();
    held.end('rolled-back', `PREPARE failed: ${c.message}`);
    return { vote: 'no', ...this.failureCause(held, c) };
  }

  /**
   * What a no vote or an abort reports. In a failed block (25P02, or a
   * ROLLBACK tag) the application's own earlier error is the real reason.
   */
  private failureCause(held: HeldBranch, c: PgErrorClass, failedBlock = c.sqlState === '25P02'): { reason: string; sqlState?: string } {
    if (failedBlock && held.lastStatementError) {
      const app = held.lastStatementError;
      return { reason: `a statement of the branch failed: ${app.message}`, ...(app.sqlState ? { sqlState: app.sqlState } : {}) };
    }
    const reason = c.sqlState === '25P01' ? `the branch's transaction was already ended (a COMMIT or ROLLBACK sent through the branch client?): ${c.message}` : c.message;
    return { reason, ...(c.sqlState ? { sqlState: c.sqlState } : {}) };
  }

  private async voteForUnheld(branch: BranchRef): Promise<Vote> {
    try {
      const gid = validateGid(branch.gid);
      // Already prepared (an earlier prepare call of this branch answered yes): say so again.
      const found = await withPooledClient(this.ctx, async (client) => resultsOf(await client.query(sql.isPrepared(), [gid]))[0].rows.length > 0);
      if (found) return { vote: 'yes' };
      return { vote: 'no', reason: `branch ${gid} is not open on participant "${this.name}" (never opened, already ended, or its connection was lost)` };
    } catch (e) {
      const c = classifyPgError(e);
      return { vote: 'no', reason: c.message, ...(c.sqlState ? { sqlState: c.sqlState } : {}) };
    }
  }

  private commitOnePhase(branch: BranchRef, held: HeldBranch | undefined): Promise<void> {
    if (held?.committing) return held.committing;
    if (held && held.phase !== 'active') {
      return Promise.reject(new TwopcError('state-conflict', `branch ${held.gid} is ${held.phase}: a one-phase commit needs a branch that never prepared`, { gid: held.gid, phase: held.phase }));
    }
    // Not held: an earlier attempt lost its connection, or this process
    // restarted. The connection's backend is gone or going; the marker tells.
    if (!held) return this.resolveOnePhase(branch);
    held.phase = 'committing';
    held.committing = this.commitHeldOnePhase(held).finally(() => this.held.delete(held.gid));
    return held.committing;
  }

  private async commitHeldOnePhase(held: HeldBranch): Promise<void> {
    const { ref } = held;
    if (held.connectionLost) {
      // COMMIT was never sent: the branch cannot have committed.
      held.release(held.connectionLost);
      held.end('rolled-back', 'the connection was lost before COMMIT');
      throw this.aborted(ref, 'connection-lost', { reason: `the branch's connection was lost before COMMIT: ${held.connectionLost.message}` });
    }
    let results;
    try {
      results = resultsOf(await held.connection().query(sql.commitOnePhase(this.options.schema, held.gid, ref.txId)));
    } catch (e) {
      const c = classifyPgError(e);
      if (c.kind === 'connection-lost') {
        // COMMIT may have reached the server: resolve instead of guessing.
        this.inDoubtBackends.set(held.gid, held.backend);
        held.release(e instanceof Error ? e : new Error(c.message));
        return this.resolveOnePhase(ref, held);
      }
      // An error at COMMIT (deferred constraint, serialization failure) has
      // rolled the transaction back; one before it left a failed block.
      await held.rollbackAndRelease();
      held.end('rolled-back', `one-phase COMMIT failed: ${c.message}`);
      throw this.aborted(ref, 'commit-failed', this.failureCause(held, c), e);
    }
    held.release();
    const tag = results[3]?.command;
    if (tag === 'COMMIT') return held.end('committed');
    held.end('rolled-back', `COMMIT answered ${tag ?? 'nothing'}`);
    throw this.aborted(ref, 'commit-failed', this.failureCause(held, { kind: 'wrong-state', message: `COMMIT answered ${tag ?? 'nothing'}: the transaction block had failed` }, true));
  }

  /**
   * The outcome of a one-phase commit whose answer was lost. The marker row
   * commits atomically with the branch's writes, so once the old backend is
   * gone, a visible marker means committed and none means it did not (a branch
   * without writes has no marker either; committed or not, it changed nothing).
   */
  private async resolveOnePhase(ref: BranchRef, held?: HeldBranch): Promise<void> {
    const backend = this.inDoubtBackends.get(ref.gid);
    let committed: boolean;
    try {
      if (backend) await ensureOldBackendGone(this.ctx, backend, this.options.connectionLossWaitMs);
      committed = await this.markerVisible(ref.gid);
    } catch (e) {
      // Still unknown: the engine retries commit({onePhase}), which comes back here.
      throw this.outcomeUnknown('resolve a one-phase COMMIT whose answer was lost', ref.gid, e);
    }
    this.inDoubtBackends.delete(ref.gid);
    held?.end(committed ? 'committed' : 'rolled-back', 'the connection was lost during the one-phase COMMIT');
    if (!committed) throw this.aborted(ref, 'connection-lost', { reason: 'the connection was lost during the one-phase COMMIT and the branch did not commit' });
  }

  private async rollbackHeld(held: HeldBranch, reason = 'the coordinator rolled the branch back'): Promise<void> {
    // Marked first, synchronously: the application may still be running a
    // statement on this connection (timeout); its next one must be refused,
    // and the driver queues our ROLLBACK behind the running one.
    held.end('rolled-back', reason);
    this.held.delete(held.gid);
    // PREPARE was never sent on this connection, so nothing can be prepared:
    // a lost connection needs no ROLLBACK (the server rolls back on its own).
    await held.rollbackAndRelease();
  }

  /**
   * COMMIT or ROLLBACK PREPARED by GID, from any pool connection; retried by
   * the engine until it returns, so "no such prepared transaction" (42704) is
   * success for a rollback, and for a commit when the marker is visible.
   */
  private async finishPrepared(ref: BranchRef, outcome: 'commit' | 'rollback'): Promise<void> {
    const gid = validateGid(ref.gid);
    const statement = outcome === 'commit' ? sql.commitPrepared(gid) : sql.rollbackPrepared(gid);
    const verb = outcome === 'commit' ? 'COMMIT PREPARED' : 'ROLLBACK PREPARED';
    try {
      const backend = this.inDoubtBackends.get(gid);
      // A PREPARE whose answer was lost may still be running in its old
      // backend; a ROLLBACK PREPARED sent before it finishes would find
      // nothing (42704, "done") and leave it prepared behind us.
      if (backend) await ensureOldBackendGone(this.ctx, backend, this.options.connectionLossWaitMs);
      await withPooledClient(this.ctx, (client) => client.query(statement));
    } catch (e) {
      if (isTwopcError(e)) throw e;
      const c = classifyPgError(e);
      if (c.kind !== 'no-such-prepared') throw this.outcomeUnknown(verb, gid, e);
      if (outcome === 'commit' && !(await this.markerVisibleOrUnknown(gid))) {
        throw new TwopcError(
          'heuristic-hazard',
          `participant "${this.name}": ${verb} ${gid}: no such prepared transaction and no marker row, although the decision is commit: the branch was rolled back or never prepared here`,
          { participant: this.name, gid, sqlState: c.sqlState },
          { cause: e },
        );
      }
    }
    this.inDoubtBackends.delete(gid);
  }

  private async markerVisibleOrUnknown(gid: string): Promise<boolean> {
    try {
      return await this.markerVisible(gid);
    } catch (e) {
      throw this.outcomeUnknown('look up the marker', gid, e);
    }
  }

  private markerVisible(gid: string): Promise<boolean> {
    return withPooledClient(this.ctx, async (client) => resultsOf(await client.query(sql.markerExists(this.options.schema), [gid]))[0].rows.length > 0);
  }

  private async unavailableOnError<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isTwopcError(e)) throw e;
      const c = classifyPgError(e);
      throw new TwopcError('participant-unavailable', `participant "${this.name}": cannot ${what}: ${c.message}`, { participant: this.name, sqlState: c.sqlState }, { cause: e });
    }
  }

  /** A retry may help (a lost connection, a busy prepared transaction, a privilege an operator can grant). */
  private outcomeUnknown(what: string, gid: string, err: unknown): TwopcError {
    if (isTwopcError(err)) return err;
    const c = classifyPgError(err);
    return new TwopcError('outcome-unknown', `participant "${this.name}": ${what} ${gid}: ${c.message}`, { participant: this.name, gid, sqlState: c.sqlState, kind: c.kind }, { cause: err });
  }

  private aborted(ref: BranchRef, cause: string, failure: { reason: string; sqlState?: string }, err?: unknown): TransactionAbortedError {
    return new TransactionAbortedError(
      ref.txId,
      { cause, message: failure.reason, branchId: ref.branchId, participant: this.name, ...(failure.sqlState ? { sqlState: failure.sqlState } : {}) },
      err === undefined ? undefined : { cause: err },
    );
  }
}

/** A branch reference the adapter can trust: valid GID and txId, and the GID is the one buildGid makes for them. */
function checkBranchRef(branch: BranchRef): Readonly<BranchRef> {
  const gid = validateGid(branch.gid);
  if (!isTxId(branch.txId)) throw new TwopcError('invalid-input', `txId must be a lower-case UUID (got ${JSON.stringify(branch.txId)})`, { field: 'txId' });
  const parsed = parseGid(gid);
  if (!parsed || parsed.txId !== branch.txId || parsed.branchId !== branch.branchId) {
    throw new TwopcError('invalid-input', `gid ${gid} does not belong to transaction ${branch.txId} branch ${branch.branchId}`, { field: 'gid' });
  }
  return Object.freeze({ ...branch });
}
