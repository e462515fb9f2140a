import type { PostgresPoolClient } from './postgres-pool';
import { resultsOf } from './postgres-pool';
import * as sql from './postgres-sql';

interface Migration {
  version: number;
  name: string;
  up(schema: string): string;
}

/** Numbered, append-only: a released migration is never edited, a change is a new version. */
export const MARKER_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'create twopc_marker', up: sql.createMarkerTable },
  { version: 2, name: 'create twopc_marker_horizon', up: sql.createMarkerHorizonTable },
];

/**
 * Brings the marker schema up to date on `client` (which must be idle). All
 * of it runs in one transaction behind an advisory lock, so concurrent
 * starters serialize and each migration is applied exactly once; PostgreSQL
 * DDL is transactional, so a crash mid-way leaves the previous version.
 * A database already at a newer version (a newer twopc migrated it) is left
 * as is: migrations only add.
 *
 * @returns the versions applied now.
 */
export async function migrateMarkerSchema(client: PostgresPoolClient, schema: string): Promise<number[]> {
  const applied: number[] = [];
  await client.query(sql.begin());
  try {
    await client.query(sql.migrationLock(), [`twopc:marker-migrations:${schema}`]);
    // CREATE SCHEMA IF NOT EXISTS still needs the CREATE privilege on the
    // database; an existing schema (always, for 'public') should not.
    const exists = resultsOf(await client.query(sql.schemaExists(), [schema]))[0].rows.length > 0;
    if (!exists) await client.query(sql.createSchema(schema));
    await client.query(sql.createMigrationsTable(schema));
    const current = Number(resultsOf(await client.query(sql.currentMigration(schema)))[0].rows[0].version);
    for (const migration of MARKER_MIGRATIONS) {
      if (migration.version <= current) continue;
      await client.query(migration.up(schema));
      await client.query(sql.recordMigration(schema), [migration.version, migration.name]);
      applied.push(migration.version);
    }
    await client.query(sql.commit());
  } catch (e) {
    await client.query(sql.rollback()).catch(() => undefined);
    throw e;
  }
  return applied;
}
