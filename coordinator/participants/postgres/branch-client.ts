import { TransactionAbortedError, TwopcError } from '../../errors';
import type { Vote } from '../../engine/types';
import type { BranchRef } from '../participant';
import type { BackendIdentity } from './postgres-connection';
import type { PgErrorClass } from './postgres-errors';
import { classifyPgError } from './postgres-errors';
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
 * through {@link BranchClient}.
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
   * BEGINs on `client` and learns the backend's identity in the same round
   * trip. On failure the connection is destroyed (its state is unknown) and
   * the driver error is thrown.
   */
  static async begin(ref: Readonly<BranchRef>, participant: string, client: PostgresPoolClient, onConnectionError?: (err: Error) => void): Promise<HeldBranch> {
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
      const row = resultsOf(await client.query(sql.beginBranch()))[1]?.rows[0];
      if (!row) throw new Error('BEGIN did not report the backend (pid, xact_start)');
      branch = new HeldBranch(ref, participant, { pid: Number(row.pid), xactStart: String(row.xact_start) }, client, onError);
      branch.connectionLost = earlyError;
      return branch;
    } catch (e) {
      client.release(e instanceof Error ? e : new Error(String(e)));
      client.removeListener('error', onError);
      throw e;
    }
  }

  get gid(): string {
    return this.ref.gid;
  }

  get held(): boolean {
    return this.client !== undefined;
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
      this.release(e instanceof Error ? e : new Error(String(e)));
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

  noteResult(result: PostgresQueryResult | PostgresQueryResult[]): void {
    for (const r of resultsOf(result)) if (!READ_TAGS.has(r.command)) this.mayHaveWritten = true;
  }

  noteError(err: unknown): void {
    this.lastStatementError = classifyPgError(err);
    // A failed statement may have written before failing (the block now fails anyway).
    this.mayHaveWritten = true;
  }
}

/** A statement result as pg returns it. */
export type BranchQueryResult<R = Record<string, unknown>> = PostgresQueryResult<R>;

/**
 * The branch's held connection, handed to application code between
 * `openBranch` and the branch's PREPARE. Every statement runs inside the
 * branch transaction.
 *
 * Once the branch was prepared or committed, `query` throws `state-conflict`;
 * once it was rolled back (abort, timeout, failed PREPARE) or its connection
 * was lost, it throws {@link TransactionAbortedError} (`transaction-aborted`),
 * which is what the application's transaction came to. Either way no statement
 * ever runs on the connection after its branch ended: it would run in
 * autocommit, outside the transaction, or on a connection already back in the pool.
 *
 * Transaction control belongs to the coordinator: statements that begin, end
 * or prepare a transaction are refused (`invalid-input`); savepoints are fine.
 * The check reads the first statement of the text only; a COMMIT hidden later
 * in a multi-statement text is caught at PREPARE, which then votes no.
 *
 * @example
 * const branch = await participant.openBranch(ref);
 * await branch.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [100, 7]);
 */
export class BranchClient {
  constructor(private readonly branch: HeldBranch) {}

  get txId(): string {
    return this.branch.ref.txId;
  }

  get gid(): string {
    return this.branch.gid;
  }

  get branchId(): number {
    return this.branch.ref.branchId;
  }

  /** `active` until the branch is prepared, committed or rolled back. */
  get phase(): BranchPhase {
    return this.branch.phase;
  }

  async query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<BranchQueryResult<R>> {
    this.branch.assertOpen();
    const verb = transactionControlVerb(text);
    if (verb) {
      throw new TwopcError('invalid-input', `branch statements must not control the transaction (${verb}): the coordinator prepares, commits or rolls back the branch`, { field: 'text' });
    }
    // Sent synchronously after the check: a PREPARE or ROLLBACK the adapter
    // issues from now on is queued behind this statement by the driver.
    const pending = this.branch.connection().query(text, values);
    this.branch.running += 1;
    try {
      const result = await pending;
      this.branch.noteResult(result);
      return result as BranchQueryResult<R>;
    } catch (e) {
      this.branch.noteError(e);
      throw e;
    } finally {
      this.branch.running -= 1;
    }
  }
}

const TRANSACTION_CONTROL = /^(begin|start\s+transaction|commit|end|abort|prepare\s+transaction|rollback(?!\s+((work|transaction)\s+)?to\b))\b/i;

/** The transaction-control verb the text starts with (after comments and empty statements), if any. */
export function transactionControlVerb(text: string): string | undefined {
  const match = TRANSACTION_CONTROL.exec(skipLeadingNoise(text));
  return match ? match[1].toUpperCase().replace(/\s+/g, ' ') : undefined;
}

function skipLeadingNoise(text: string): string {
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ';' || /\s/.test(c)) {
      i += 1;
    } else if (text.startsWith('--', i)) {
      const eol = text.indexOf('\n', i);
      i = eol < 0 ? text.length : eol + 1;
    } else if (text.startsWith('/*', i)) {
      // PostgreSQL block comments nest.
      let depth = 0;
      do {
        if (text.startsWith('/*', i)) {
          depth += 1;
          i += 2;
        } else if (text.startsWith('*/', i)) {
          depth -= 1;
          i += 2;
        } else {
          i += 1;
        }
      } while (depth > 0 && i < text.length);
    } else {
      break;
    }
  }
  return text.slice(i);
}
