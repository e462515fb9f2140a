import type { PostgresPoolClient } from './postgres-pool';
import { resultsOf } from './postgres-pool';
import * as sql from './postgres-sql';

/** One step of a schema's layout. Numbered, append-only: a released migration is never edited, a change is a new version. */
export interface SchemaMigration {
  version: number;
  name: string;
  /** The DDL for `schema`; several statements may share it (it is sent without parameters). */
  up(schema: string): string;
}

/** What {@link applyMigrations} brings up to date. */
export interface MigrationSet {
  schema: string;
  /** The table in `schema` that records the versions applied: one per set, so sets sharing a schema migrate on their own. */
  table: string;
  /** Advisory lock key text: starters of this set in this schema take turns on it. */
  lockKey: string;
  migrations: readonly SchemaMigration[];
  /**
   * The error for a schema already at a version newer than any of
   * `migrations` (a newer release migrated it). Absent: such a schema is
   * left as is — for sets whose migrations only ever add.
   */
  refuseNewer?: (found: number, newest: number) => Error;
}

/**
 * Brings a schema up to date on `client` (idle, checked out for this). All of
 * it runs in one transaction behind an advisory lock, so concurrent starters
 * take turns and each migration is applied exactly once; PostgreSQL DDL being
 * transactional, a crash mid-way leaves the previous version.
 *
 * @returns the versions applied now.
 * @example
 * await applyMigrations(client, {
 *   schema: 'billing', table: 'billing_migrations', lockKey: 'billing:migrations',
 *   migrations: [{ version: 1, name: 'create invoices', up: (s) => `CREATE TABLE "${s}".invoices (id bigint PRIMARY KEY)` }],
 * });
 */
export async function applyMigrations(client: PostgresPoolClient, set: MigrationSet): Promise<number[]> {
  const { schema, table } = set;
  const applied: number[] = [];
  await client.query(sql.begin());
  try {
    // Every set creating the same schema takes turns on it first (two sets' starters could otherwise both
    // see it missing, and one CREATE SCHEMA fail on the other's); then this set's own lock.
    await client.query(sql.migrationLock(), [`twopc:schema:${schema}`]);
    await client.query(sql.migrationLock(), [set.lockKey]);
    // CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the database even when the
    // schema exists (always, for 'public'): checking first lets a pre-created schema do without it.
    const exists = resultsOf(await client.query(sql.schemaExists(), [schema]))[0].rows.length > 0;
    if (!exists) await client.query(sql.createSchema(schema));
    await client.query(sql.createMigrationsTable(schema, table));
    const current = Number(resultsOf(await client.query(sql.currentMigration(schema, table)))[0].rows[0].version);
    const newest = Math.max(0, ...set.migrations.map((m) => m.version));
    // Code older than the layout must not write tables whose meaning it does not know.
    if (current > newest && set.refuseNewer) throw set.refuseNewer(current, newest);
    for (const migration of set.migrations) {
      if (migration.version <= current) continue;
      await client.query(migration.up(schema));
      await client.query(sql.recordMigration(schema, table), [migration.version, migration.name]);
      applied.push(migration.version);
    }
    await client.query(sql.commit());
  } catch (e) {
    await client.query(sql.rollback()).catch(() => undefined);
    throw e;
  }
  return applied;
}
