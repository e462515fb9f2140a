import { Kysely, PostgresDialect, type Driver, type KyselyConfig, type PostgresPool, type PostgresPoolClient } from 'kysely';
import type { BranchQueryable } from '../postgres/branch-client';
import { refusedInBranch } from './refused';

/**
 * A Kysely dialect over one branch: PostgreSQL's dialect on a pool whose only
 * connection is the branch's (released, it stays the branch's; `destroy()`
 * leaves the branch open). `transaction()` and `startTransaction()` are
 * refused (`invalid-input`) before anything is sent; `stream()` needs a
 * cursor, which a branch does not offer. A failed statement throws pg's error
 * and fails the branch: it votes no, whether the work throws or catches it.
 *
 * @example
 * const db = new Kysely<Database>({ dialect: new KyselyBranchDialect(branch), plugins: [new CamelCasePlugin()] });
 */
export class KyselyBranchDialect extends PostgresDialect {
  constructor(branch: BranchQueryable) {
    const client = {
      query: (sql: string, parameters: readonly unknown[]) => branch.query(sql, parameters),
      release: () => undefined,
    } as unknown as PostgresPoolClient;
    const pool: PostgresPool = { connect: async () => client, end: async () => undefined };
    super({ pool });
  }

  override createDriver(): Driver {
    const driver = super.createDriver();
    driver.beginTransaction = () => Promise.reject(refusedInBranch('Kysely', 'transaction() / startTransaction()'));
    return driver;
  }
}

/**
 * A Kysely instance over one branch (see `KyselyBranchDialect`). Build one per
 * branch: it opens no connection.
 *
 * @example
 * import { kyselyBranch } from '@twopc/participant-sdk/kysely';
 * await orders.enlist(txId, async (branch) => {
 *   const db = kyselyBranch<Database>(branch);
 *   await db.updateTable('accounts').set((eb) => ({ balance: eb('balance', '-', amount) })).where('id', '=', id).execute();
 * });
 */
export function kyselyBranch<DB>(branch: BranchQueryable, config: Omit<KyselyConfig, 'dialect'> = {}): Kysely<DB> {
  return new Kysely<DB>({ ...config, dialect: new KyselyBranchDialect(branch) });
}
