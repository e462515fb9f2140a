import { TwopcError } from '../errors';

/**
 * The error an ORM's own transaction call gets inside a branch, thrown before
 * anything reaches the database: a branch is already a transaction, and the
 * coordinator alone ends it. Savepoints are fine.
 */
export function refusedInBranch(library: string, call: string): TwopcError {
  return new TwopcError(
    'invalid-input',
    `${library} ${call} cannot run in a twopc branch: the branch is already a transaction, which the coordinator prepares and commits or rolls back (write the work without it, or use a savepoint)`,
    { field: call },
  );
}
