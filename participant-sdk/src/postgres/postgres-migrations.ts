import type { PostgresPoolClient } from './postgres-pool';
import * as sql from './postgres-sql';
import { applyMigrations, type SchemaMigration } from './schema-migrations';

/** Numbered, append-only: a released migration is never edited, a change is a new version. */
export const MARKER_MIGRATIONS: readonly SchemaMigration[] = [
  { version: 1, name: 'create twopc_marker', up: sql.createMarkerTable },
  { version: 2, name: 'create twopc_marker_horizon', up: sql.createMarkerHorizonTable },
];

/**
 * Brings the marker schema up to date on `client` (which must be idle), in
 * one transaction behind an advisory lock (see applyMigrations). A database
 * already at a newer version (a newer twopc migrated it) is left as is:
 * migrations only add.
 *
 * @returns the versions applied now.
 */
export function migrateMarkerSchema(client: PostgresPoolClient, schema: string): Promise<number[]> {
  return applyMigrations(client, { schema, table: sql.MARKER_MIGRATIONS_TABLE, lockKey: `twopc:marker-migrations:${schema}`, migrations: MARKER_MIGRATIONS });
}
