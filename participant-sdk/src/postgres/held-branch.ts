import { TransactionAbortedError, TwopcError } from '../errors';
import type { BranchRef, Vote } from '../branch-types';
import type { BackendIdentity } from './postgres-connection';
import type { PgErrorClass } from './postgres-errors';
import { classifyPgError } from './postgres-errors';
import { asError } from './postgres-outcomes';
import type { PostgresPoolClient, PostgresQueryResult } from './postgres-pool';
import { resultsOf } from './postgres-pool';
import * as sql from './postgres-sql';

export const BRANCH_PHASES = ['active', 'preparing', 'prepared', 'committing', 'committed', 'rolled-back'] as const;
export type BranchPhase = (typeof BRANCH_PHASES)[number];

// Command tags (pg keeps the first word) after which a branch still has not
// written anything, as far as tags can tell: a SELECT may call a function that
// writes, so this only picks the cheaper way to find out at PREPARE time; the
// server's answer decides. ROLLBACK here is ROLLBACK TO SAVEPOINT.
const READ_TAGS = new Set(['SELECT', 'SHOW', 'SET', 'RESET', 'FETCH', 'MOVE', 'DECLARE', 'CLOSE', 'SAVEPOINT', 'RELEASE', 'ROLLBACK', 'EXPLAIN']);

/**
 * A branch whose connection the adapter holds, from BEGIN until PREPARE, a
 * one-phase COMMIT, or ROLLBACK. Internal to the adapter; applications see it
 * through `BranchClient`.
 */
export class HeldBranch {
  phase: BranchPhase = 'active';
  /** Why the branch was rolled back, for the application's next statement. */
  endReason = '';
  /** Set as soon as the connection reports an error: nothing sent afterwards can reach the server. */
  connectionLost: Error | undefined;
  /** The last error the application's own statements met: the real reason a later PREPARE fails with 25P02. */
  lastStatementError: PgErrorClass | undefined;
  /** False while every statement's tag was a read: PREPARE then first asks the server whether the branch wrote. */
  mayHaveWritten = false;
  /** Application statements sent and not yet answered. */
  running = 0;
  /** Whether the application statement answered last succeeded (BEGIN, before any). */
  private lastAnsweredOk = true;
  /** An application statement whose end this branch cannot see was sent (see BranchClient.query). */
  private untracked = false;
  preparing: Promise<Vote> | undefined;
  committing: Promise<void> | undefined;
  private client: PostgresPoolClient | undefined;

  private constructor(
    readonly ref: Readonly<BranchRef>,
    readonly participant: string,
    readonly backend: BackendIdentity,
    client: PostgresPoolClient,
    private readonly onError: (err: Error) => void,
  ) {
    this.client = client;
  }

  /**
   * BEGINs on `client`, tagging the backend with the branch (so rollback and
   * status reach it from any process), and learns the backend's identity in
   * the same round trip. On failure the connection is destroyed (its state is
   * unknown) and the driver error is thrown.
   */
  static async begin(
    ref: Readonly<BranchRef>,
    participant: string,
    client: PostgresPoolClient,
    identities: WeakMap<PostgresPoolClient, BackendIdentity>,
    onConnectionError?: (err: Error) => void,
  ): Promise<HeldBranch> {
    let branch: HeldBranch | undefined;
    let earlyError: Error | undefined;
    // Attached before the first statement: a held connection sits idle in
    // transaction for as long as the application works, and a server that dies
    // meanwhile makes the client emit `error`, which without a listener crashes the process.
    const onError = (err: Error): void => {
      if (branch) branch.connectionLost ??= err;
      else earlyError ??= err;
      onConnectionError?.(err);
    };
    client.on('error', onError);
    try {
      // A pooled connection is one backend for life, and the start of its first
      // transaction is no earlier than the backend's own start: learned once per
      // connection, it identifies the backend for every later branch on it, so
      // those only BEGIN and tag.
      let identity = identities.get(client);
      if (identity) {
        await client.query(sql.beginBranch(ref.gid, false));
      } else {
        const row = resultsOf(await client.query(sql.beginBranch(ref.gid, true)))[2]?.rows[0];
        if (!row) throw new Error('BEGIN did not report the backend (pid, xact_start)');
        identity = { pid: Number(row.pid), xactStart: String(row.xact_start) };
        identities.set(client, identity);
      }
      branch = new HeldBranch(ref, participant, identity, client, onError);
      branch.connectionLost = earlyError;
      return branch;
    } catch (e) {
      client.release(asError(e));
      client.removeListener('error', onError);
      throw e;
    }
  }

  get gid(): string {
    return this.ref.gid;
  }

  /** The held connection; throws if it was already released. */
  connection(): PostgresPoolClient {
    if (!this.client) throw new TwopcError('state-conflict', `branch ${this.gid} no longer holds a connection`, { gid: this.gid, phase: this.phase });
    return this.client;
  }

  end(phase: 'prepared' | 'committed' | 'rolled-back', reason = ''): void {
    this.phase = phase;
    this.endReason = reason;
  }

  /** Gives the connection back; with an error the pool destroys it instead. */
  release(err?: Error): void {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    client.release(err);
    client.removeListener('error', this.onError);
  }

  /**
   * Lets go of the connection without giving it back: the caller has taken it
   * over (and put its own error listener on it first).
   */
  detach(): void {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    client.removeListener('error', this.onError);
  }

  /**
   * ROLLBACK (ending a failed block too; a warning, not an error, when no
   * transaction is open) and release. If even that fails the connection's
   * state is unknown, so it is destroyed.
   */
  async rollbackAndRelease(): Promise<void> {
    if (this.connectionLost) return this.release(this.connectionLost);
    try {
      await this.connection().query(sql.rollback());
      this.release();
    } catch (e) {
      this.release(asError(e));
    }
  }

  /** Throws unless application statements may still run on this branch. */
  assertOpen(): void {
    const { txId, branchId } = this.ref;
    if (this.phase === 'rolled-back') {
      throw new TransactionAbortedError(txId, { cause: 'branch-rolled-back', message: this.endReason || 'the branch was rolled back', branchId, participant: this.participant });
    }
    if (this.phase !== 'active') {
      throw new TwopcError('state-conflict', `branch ${this.gid} is ${this.phase}: it takes no more statements`, { gid: this.gid, phase: this.phase });
    }
    if (this.connectionLost) {
      throw new TransactionAbortedError(txId, { cause: 'connection-lost', message: `the branch's connection was lost: ${this.connectionLost.message}`, branchId, participant: this.participant });
    }
  }

  /**
   * Is the branch's transaction block open, by the connection's own status,
   * with no statement to ask? Only when that status is current: pg updates it
   * at each ReadyForQuery, and settles a successful statement only after its
   * ReadyForQuery, but rejects a failing one at its ErrorResponse, before the
   * ReadyForQuery that says whether the block failed ('E') or ended ('I': a
   * COMMIT earlier in the same text). So: no application statement still
   * sent and unanswered (the driver answers them in order), and the last one
   * answered succeeded, or none was sent since BEGIN; and none sent that
   * returned no promise (a submittable: its end is not seen here). A false
   * answer only means "ask the server" (the in-block guard in SQL).
   */
  inOpenBlock(): boolean {
    if (this.running > 0 || !this.lastAnsweredOk || this.untracked || this.connectionLost) return false;
    return this.client?.getTransactionStatus?.() === 'T';
  }

  noteUntracked(): void {
    this.untracked = true;
    this.mayHaveWritten = true;
  }

  noteResult(result: PostgresQueryResult | PostgresQueryResult[]): void {
    this.lastAnsweredOk = true;
    if (this.mayHaveWritten) return;
    if (!Array.isArray(result)) {
      if (!READ_TAGS.has(result.command)) this.mayHaveWritten = true;
      return;
    }
    for (const r of result) if (!READ_TAGS.has(r.command)) this.mayHaveWritten = true;
  }

  noteError(err: unknown): void {
    this.lastAnsweredOk = false;
    this.lastStatementError = classifyPgError(err);
    // A failed statement may have written before failing (the block now fails anyway).
    this.mayHaveWritten = true;
  }

  /** The end of an application statement (BranchClient.query): bound once per branch, not made per statement. */
  readonly onAnswer = <T extends PostgresQueryResult | PostgresQueryResult[]>(result: T): T => {
    this.running -= 1;
    this.noteResult(result);
    return result;
  };

  readonly onFailure = (err: unknown): never => {
    this.running -= 1;
    this.noteError(err);
    throw err;
  };
}
