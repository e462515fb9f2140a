import type { DrizzleConfig } from 'drizzle-orm';
import { drizzle, type NodePgClient, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { BranchQueryable } from '../postgres/branch-client';
import type { PostgresQueryConfig } from '../postgres/postgres-pool';
import { refusedInBranch } from './refused';

/**
 * Drizzle (`drizzle-orm/node-postgres`) over one branch: every statement runs
 * in the branch's transaction. Build one per branch (it is cheap: no
 * connection, no round trip). `db.transaction()` is refused
 * (`invalid-input`) before anything is sent. A failed statement throws
 * Drizzle's `DrizzleQueryError` (pg's error as its `cause`) and fails the
 * branch: it votes no, whether the work throws the error or catches it.
 *
 * @example
 * import { drizzleBranch } from '@twopc/participant-sdk/drizzle';
 * await orders.enlist(txId, async (branch) => {
 *   const db = drizzleBranch(branch, { schema });
 *   await db.update(accounts).set({ balance: sql`${accounts.balance} - ${amount}` }).where(eq(accounts.id, id));
 * });
 */
export function drizzleBranch<TSchema extends Record<string, unknown> = Record<string, never>>(branch: BranchQueryable, config: DrizzleConfig<TSchema> = {}): NodePgDatabase<TSchema> {
  // Drizzle calls only `client.query(config, params)`, with its own row mode and type parsers.
  const client = { query: (query: string | PostgresQueryConfig, params?: readonly unknown[]) => branch.query(query, params) };
  // The config form: `drizzle(client)` would take a plain object for a config.
  const db = drizzle<TSchema, NodePgClient>({ ...config, client: client as unknown as NodePgClient });
  // Otherwise it would send `begin`, which the branch refuses with Drizzle's "Failed query: begin" around it.
  db.transaction = () => Promise.reject(refusedInBranch('Drizzle', 'db.transaction()'));
  return db;
}
