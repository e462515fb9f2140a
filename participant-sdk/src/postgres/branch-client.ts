import { TwopcError } from '../errors';
import type { BranchPhase, HeldBranch } from './held-branch';
import type { PostgresQueryConfig, PostgresQueryResult } from './postgres-pool';

/** A statement result as pg returns it (with `rowMode: 'array'`, each row is an array). */
export type BranchQueryResult<R = Record<string, unknown>> = PostgresQueryResult<R>;

/**
 * What runs statements inside one branch, as the ORM adapters take it
 * (`@twopc/participant-sdk/drizzle`, `/kysely`, `/prisma`): the
 * `BranchClient` that `enlist` hands to its work, or the in-process
 * coordinator's `tx.db(name)`. Shaped like pg's `client.query`: a text and
 * its values, or a query config.
 */
export interface BranchQueryable {
  query<R = Record<string, unknown>>(textOrConfig: string | PostgresQueryConfig, values?: readonly unknown[]): Promise<BranchQueryResult<R>>;
}

/**
 * The branch's held connection, handed to application code between
 * `openBranch` and the branch's PREPARE. Every statement runs inside the
 * branch transaction.
 *
 * Once the branch was prepared or committed, `query` throws `state-conflict`;
 * once it was rolled back (abort, timeout, failed PREPARE) or its connection
 * was lost, it throws `TransactionAbortedError` (`transaction-aborted`),
 * which is what the application's transaction came to. Either way no statement
 * ever runs on the connection after its branch ended: it would run in
 * autocommit, outside the transaction, or on a connection already back in the pool.
 *
 * Transaction control belongs to the coordinator: statements that begin, end
 * or prepare a transaction are refused (`invalid-input`); savepoints are fine.
 * The check reads the first statement of the text only; a COMMIT (or
 * ROLLBACK) hidden later in a multi-statement text is caught at PREPARE, which
 * then votes no (25P01), in one of two ways (`HeldBranch.inOpenBlock`). When
 * the connection's transaction status is current (the last statement answered
 * and succeeded), it says the block ended ('I'), and PREPARE sends its SQL
 * in-block guard, a SAVEPOINT that fails outside a block. When it is not
 * current (a statement failed or is unanswered, the pool's clients do not
 * report it, or the branch ever sent a submittable such as pg's `Query` or a
 * Cursor, whose end is not seen), the guard is always sent. Only a current
 * status of 'T' (the block open) leaves the guard out.
 *
 * While the branch is open its backend's `application_name` is the branch's
 * tag (its GID): that is how a rollback or status call reaching another
 * process finds and ends it. Do not set `application_name` in a branch.
 *
 * `query` takes what pg's `client.query` takes: `(text, values)`, or a
 * query config `{ text, values, rowMode, types, name }` (what Drizzle and
 * Prisma send), passed to the driver untouched.
 *
 * @example
 * const branch = await participant.openBranch(ref);
 * await branch.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [100, 7]);
 */
export class BranchClient implements BranchQueryable {
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

  // Not async, and no await: a statement costs the driver's promise and one `then` with the
  // branch's own handlers (made once per branch), not an async frame and its extra promise hops.
  // Every refusal still comes back as a rejected promise, as from an async function.
  query<R = Record<string, unknown>>(textOrConfig: string | PostgresQueryConfig, values?: readonly unknown[]): Promise<BranchQueryResult<R>> {
    const branch = this.branch;
    let pending: unknown;
    try {
      branch.assertOpen();
      const text = typeof textOrConfig === 'string' ? textOrConfig : textOrConfig?.text;
      if (typeof text !== 'string') {
        throw new TwopcError('invalid-input', 'a branch statement needs its SQL text: query(text, values) or query({ text, values })', { field: 'text' });
      }
      const verb = transactionControlVerb(text);
      if (verb) {
        throw new TwopcError('invalid-input', `branch statements must not control the transaction (${verb}): the coordinator prepares, commits or rolls back the branch`, { field: 'text' });
      }
      // Sent synchronously after the check: a PREPARE or ROLLBACK the adapter
      // issues from now on is queued behind this statement by the driver.
      pending = branch.connection().query(textOrConfig, values);
    } catch (e) {
      return Promise.reject(e);
    }
    // A submittable (pg's Query, a Cursor) comes back as itself, a config with its own callback
    // as undefined, not as a promise: it runs on with nothing here to tell when it ends (the
    // connection's status is never current again) or what it did (it may have written).
    if (typeof (pending as { then?: unknown } | undefined)?.then !== 'function') {
      branch.noteUntracked();
      return Promise.resolve(pending as unknown as BranchQueryResult<R>);
    }
    branch.running += 1;
    return (pending as Promise<PostgresQueryResult>).then(branch.onAnswer, branch.onFailure) as Promise<BranchQueryResult<R>>;
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
