import type { BranchOpener } from '../../coordinator/in-process/transaction-scope';
import type { Vote } from '../../coordinator/engine/ports/types';

/**
 * A database that answers every call at once (a resolved promise each): for
 * measuring the engine's own work per transaction without PostgreSQL.
 */
export function instantDatabase(name: string): BranchOpener {
  const yes: Vote = { vote: 'yes', xid: '1.1:100' };
  const updated = { command: 'UPDATE', rowCount: 1, rows: [] };
  return {
    name,
    prepare: () => Promise.resolve(yes),
    commit: () => Promise.resolve(),
    rollback: () => Promise.resolve(),
    close: () => Promise.resolve(),
    openBranch: () => Promise.resolve({ query: () => Promise.resolve(updated) }),
  };
}
