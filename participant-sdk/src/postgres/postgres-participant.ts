import { TwopcError, isTwopcError } from '../errors';
import { hasPrefix, isTxId, parseGid, validateGid, validatePrefix } from '../gid';
import type { BranchRef, ParticipantBranchState, PreparedBranch } from '../branch-types';
import { BranchClient } from './branch-client';
import { ClusterHistories } from './cluster-history';
import { preparedXid } from './commit-proof';
import { PreparedConnections } from './prepared-connections';
import type { PostgresVote, ProvenBranchRef } from './commit-proof';
import { HeldBranch } from './held-branch';
import { commitHeldOnePhase, finishPrepared, resolveOnePhase } from './postgres-commit';
import { cancelRunningStatement, connect, withPooledClient } from './postgres-connection';
import type { BackendIdentity } from './postgres-connection';
import { classifyPgError } from './postgres-errors';
import { migrateMarkerSchema } from './postgres-migrations';
import type { PostgresParticipantOptions, ResolvedPostgresOptions } from './postgres-options';
import { parsePostgresOptions } from './postgres-options';
import type { BranchEnv } from './postgres-outcomes';
import { outcomeUnknown, withState } from './postgres-outcomes';
import { resultsOf } from './postgres-pool';
import type { PostgresPoolClient } from './postgres-pool';
import { prepareHeld } from './postgres-prepare';
import { branchStatus, recordedState } from './postgres-status';
import * as sql from './postgres-sql';

const PRUNE_BATCH = 1000;
// pg_terminate_backend(pid, timeout) and pg_current_xact_id_if_assigned().
const MIN_SERVER_VERSION = 140000;

/**
 * A PostgreSQL database the coordinator reaches directly (SPEC §3): branches
 * run on connections it holds, phase 1 is `PREPARE TRANSACTION`, phase 2 is
 * `COMMIT/ROLLBACK PREPARED` by GID from any connection of the pool.
 *
 * @example
 * const orders = new PostgresParticipant({ name: 'orders', pool: new Pool({ connectionString }) });
 * await orders.start();
 * const ref = { txId, branchId: 1, gid: buildGid('twopc', txId, 1), participant: 'orders' };
 * const branch = await orders.openBranch(ref);
 * await branch.query('INSERT INTO orders (id) VALUES ($1)', [42]);
 * const vote = await orders.prepare(ref); // then commit(ref) or rollback(ref), as decided
 */
export class PostgresParticipant {
  readonly name: string;
  private readonly options: ResolvedPostgresOptions;
  private readonly env: BranchEnv;
  /** Branches whose connection is held, or whose PREPARE / one-phase COMMIT is in flight. */
  private readonly held = new Map<string, HeldBranch>();
  /** Which backend each pooled connection is, learned at its first branch (see HeldBranch.begin). */
  private readonly identities = new WeakMap<PostgresPoolClient, BackendIdentity>();
  private closed = false;
  private readonly onPoolError = (err: Error): void => this.options.onConnectionError?.(err);

  constructor(options: PostgresParticipantOptions) {
    this.options = parsePostgresOptions(options);
    this.name = this.options.name;
    const { pool, schema, connectionLossWaitMs, onConnectionError, commitProof, keepPreparedConnectionMs } = this.options;
    const prepared = keepPreparedConnectionMs > 0 ? { prepared: new PreparedConnections(keepPreparedConnectionMs) } : {};
    this.env = { pool, participant: this.name, onConnectionError, schema, connectionLossWaitMs, commitProof, histories: new ClusterHistories(), inDoubt: new Map(), readXids: new Map(), ...prepared };
    // pg's Pool emits `error` when an idle client's server goes away; unheard, that crashes the process.
    this.options.pool.on?.('error', this.onPoolError);
  }

  /**
   * Checks that the server allows prepared transactions, then migrates the
   * marker table. Safe to run from several processes at once.
   */
  async start(): Promise<void> {
    await withPooledClient(this.env, async (client) => {
      const settings = resultsOf(await client.query(sql.serverSettings()))[0].rows[0];
      if (Number(settings.max_prepared_transactions) <= 0) {
        throw new TwopcError(
          'prepared-transactions-disabled',
          `participant "${this.name}" (database "${settings.database}"): max_prepared_transactions is 0, so PostgreSQL refuses PREPARE TRANSACTION and this database cannot take part in two-phase commit. ` +
            `Set max_prepared_transactions in postgresql.conf to a value above 0 (e.g. equal to max_connections, here ${settings.max_connections}) and restart PostgreSQL: the setting only changes at server start.`,
          { participant: this.name, database: settings.database },
        );
      }
      if (Number(settings.server_version_num) < MIN_SERVER_VERSION) {
        throw new TwopcError('invalid-config', `participant "${this.name}" (database "${settings.database}"): PostgreSQL 14 or later is required (server is ${settings.version})`, { participant: this.name, database: settings.database });
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
    const ref = checkBranchRef(branch);
    this.assertOpenable(ref.gid);
    const client = await connect(this.env);
    let held: HeldBranch;
    try {
      held = await HeldBranch.begin(ref, this.name, client, this.identities, this.options.onConnectionError);
    } catch (e) {
      const c = classifyPgError(e);
      throw new TwopcError('participant-unavailable', `participant "${this.name}": cannot begin branch ${ref.gid}: ${c.message}`, { participant: this.name, gid: ref.gid, sqlState: c.sqlState }, { cause: e });
    }
    if (this.closed || this.held.has(ref.gid)) {
      // close(), or another openBranch of this GID, ran while this one connected.
      await held.rollbackAndRelease();
      this.assertOpenable(ref.gid);
    }
    this.held.set(ref.gid, held);
    return new BranchClient(held);
  }

  /** Under commitProof `xid`, a yes carries the branch's xid: pass it back with commit / rollback (see {@link ProvenBranchRef}). */
  async prepare(branch: BranchRef): Promise<PostgresVote> {
    const held = this.held.get(branch.gid);
    if (!held) return this.voteForUnheld(branch);
    // A repeated call while the first is in flight gets the same answer.
    if (held.preparing) return held.preparing;
    if (held.phase !== 'active') return { vote: 'no', reason: `branch ${branch.gid} is ${held.phase}, not active` };
    held.phase = 'preparing';
    held.preparing = prepareHeld(this.env, held).finally(() => this.held.delete(held.gid));
    return held.preparing;
  }

  async commit(branch: ProvenBranchRef, options: { onePhase?: boolean } = {}): Promise<void> {
    const gid = validateGid(branch.gid);
    const held = this.held.get(gid);
    if (options.onePhase) return this.commitOnePhase(branch, held);
    if (held?.preparing) await held.preparing;
    else if (held) throw new TwopcError('state-conflict', `branch ${gid} was never prepared: only a one-phase commit can end it with a commit`, { gid, phase: held.phase });
    await finishPrepared(this.env, branch, 'commit');
  }

  /**
   * Rolls the branch back wherever it is: held here (ROLLBACK on its
   * connection), held by another process (its tagged backend is terminated and
   * waited for, so it can no longer prepare or commit), or prepared
   * (ROLLBACK PREPARED). Unknown or already rolled back is success.
   */
  async rollback(branch: ProvenBranchRef): Promise<void> {
    const gid = validateGid(branch.gid);
    const held = this.held.get(gid);
    if (held?.phase === 'active') return this.rollbackHeld(held);
    if (held?.committing) throw new TwopcError('state-conflict', `branch ${gid} is being committed in one phase`, { gid });
    // Let a PREPARE in flight finish, then undo whatever it did by GID.
    if (held?.preparing) await held.preparing;
    await finishPrepared(this.env, branch, 'rollback');
  }

  /**
   * What is known of a branch (recovery asks it of an undecided
   * transaction's only branch, which may have committed in one phase).
   * `active` while this process holds it; otherwise see {@link branchStatus}.
   */
  async status(branch: ProvenBranchRef): Promise<ParticipantBranchState> {
    const gid = validateGid(branch.gid);
    if (this.held.has(gid)) return 'active';
    return branchStatus(this.env, gid, branch.xid);
  }

  /**
   * What the database records of a branch, reading only: `prepared`,
   * `committed` (its marker is visible, or the commit log says its `xid`
   * committed) or `unknown` (never prepared, rolled back, or read-only).
   * Unlike {@link status} it ends nothing, so a branch another process still
   * holds reads as `unknown`.
   */
  async recordedState(branch: ProvenBranchRef): Promise<'prepared' | 'committed' | 'unknown'> {
    return recordedState(this.env, branch.gid, branch.xid);
  }

  /**
   * Under commitProof `xid`, the xid a yes vote for this prepared branch
   * carries (what phase 2 needs to judge a 42704 without a marker); undefined
   * when it is not prepared here, or under `marker`. Reads only. An operator's
   * commit puts it in the decision it writes.
   */
  async preparedXid(branch: BranchRef): Promise<string | undefined> {
    const gid = validateGid(branch.gid);
    if (this.env.commitProof !== 'xid') return undefined;
    try {
      return await preparedXid(this.env, gid);
    } catch (e) {
      throw outcomeUnknown(this.env, 'read the xid of', gid, e);
    }
  }

  /** Prepared transactions of this database whose GID is a valid GID of `prefix`. */
  async listPrepared(prefix: string): Promise<PreparedBranch[]> {
    validatePrefix(prefix);
    const rows = await this.unavailableOnError('list prepared transactions', () =>
      withPooledClient(this.env, async (client) => resultsOf(await client.query(sql.listPrepared(), [`${prefix}_`]))[0].rows),
    );
    return rows.filter((row) => hasPrefix(String(row.gid), prefix)).map((row) => ({ gid: String(row.gid), preparedAt: Number(row.prepared_at) }));
  }

  /**
   * Deletes the markers of branches that committed more than `olderThanMs`
   * ago (default: markerRetentionMs), in batches so no statement holds many
   * row locks or a long snapshot. The age counts from the commit, not from
   * the branch's BEGIN: each call records the database's transaction horizon
   * with the time, and a marker goes once a horizon recorded at least
   * `olderThanMs` ago proves its branch had committed by then (see
   * postgres-sql.ts). So the first calls after start-up on a fresh schema
   * delete nothing, and a marker lives up to the retention plus one interval
   * between calls after its commit. A prepared branch keeps its marker
   * whatever its age. An aborted `signal` ends the call after the batch in
   * progress (a long backlog can take many batches; its owner is stopping);
   * what is left goes on the next call.
   * @returns how many were deleted.
   */
  async pruneMarkers(olderThanMs: number = this.options.markerRetentionMs, options: { signal?: AbortSignal } = {}): Promise<number> {
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
      throw new TwopcError('invalid-input', `olderThanMs must be a number >= 0 (got ${olderThanMs})`, { field: 'olderThanMs' });
    }
    const { schema } = this.options;
    return this.unavailableOnError('prune markers', () =>
      withPooledClient(this.env, async (client) => {
        await client.query(sql.recordMarkerHorizon(schema));
        let total = 0;
        for (;;) {
          const deleted = resultsOf(await client.query(sql.pruneMarkers(schema), [olderThanMs, PRUNE_BATCH]))[0].rowCount ?? 0;
          total += deleted;
          if (deleted < PRUNE_BATCH) break;
          // Stopped: leave the rest (and the horizons, which only ever make pruning later, never earlier).
          if (options.signal?.aborted) return total;
        }
        // By the configured retention at least: a call with a shorter age (by hand) must not
        // drop the horizons the periodic pruning will count from.
        await client.query(sql.pruneMarkerHorizons(schema), [Math.max(olderThanMs, this.options.markerRetentionMs)]);
        return total;
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
    this.env.prepared?.releaseAll();
    this.options.pool.removeListener?.('error', this.onPoolError);
  }

  private assertOpenable(gid: string): void {
    if (this.closed) throw new TwopcError('shutting-down', `participant "${this.name}" is closed`, { participant: this.name });
    if (this.held.has(gid)) throw new TwopcError('state-conflict', `branch ${gid} is already open (a GID is never reused)`, { gid });
  }

  private async voteForUnheld(branch: BranchRef): Promise<PostgresVote> {
    try {
      const gid = validateGid(branch.gid);
      // Its PREPARE was cut off and answered "no"; the answer stays "no" even
      // if the old backend has completed that PREPARE since: the abort removes it.
      if (this.env.inDoubt.has(gid)) return { vote: 'no', reason: `the connection of branch ${gid} was lost during PREPARE` };
      // Already prepared (an earlier prepare call of this branch answered yes): say so again, with its xid.
      if (this.env.commitProof === 'xid') {
        const xid = await preparedXid(this.env, gid);
        if (xid !== undefined) return { vote: 'yes', xid };
      } else {
        const found = await withPooledClient(this.env, async (client) => resultsOf(await client.query(sql.isPrepared(), [gid]))[0].rows.length > 0);
        if (found) return { vote: 'yes' };
      }
      return { vote: 'no', reason: `branch ${gid} is not open on participant "${this.name}" (never opened, already ended, or its connection was lost)` };
    } catch (e) {
      const c = classifyPgError(e);
      return { vote: 'no', ...withState(c.message, c.sqlState) };
    }
  }

  private commitOnePhase(branch: BranchRef, held: HeldBranch | undefined): Promise<void> {
    if (held?.committing) return held.committing;
    // Not held: an earlier attempt lost its connection, or this process
    // restarted. The connection's backend is gone or going; the marker tells.
    if (!held) return resolveOnePhase(this.env, branch);
    if (held.phase !== 'active') {
      return Promise.reject(new TwopcError('state-conflict', `branch ${held.gid} is ${held.phase}: a one-phase commit needs a branch that never prepared`, { gid: held.gid, phase: held.phase }));
    }
    held.phase = 'committing';
    held.committing = commitHeldOnePhase(this.env, held).finally(() => this.held.delete(held.gid));
    return held.committing;
  }

  private async rollbackHeld(held: HeldBranch, reason = 'the coordinator rolled the branch back'): Promise<void> {
    // Marked first, synchronously: the application may still be running a
    // statement on this connection (timeout); its next one must be refused.
    // The driver queues our ROLLBACK behind the running one.
    held.end('rolled-back', reason);
    this.held.delete(held.gid);
    // A statement still running (stuck on a lock, a slow query) would hold the
    // ROLLBACK, the connection and the branch's locks for as long as it runs.
    if (held.running > 0 && !held.connectionLost) await cancelRunningStatement(this.env, held.backend);
    // PREPARE was never sent on this connection, so nothing can be prepared:
    // a lost connection needs no ROLLBACK (the server rolls back on its own).
    await held.rollbackAndRelease();
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
