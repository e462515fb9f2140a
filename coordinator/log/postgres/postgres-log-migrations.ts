import type { PoolClient } from 'pg';
import { applyMigrations, type SchemaMigration } from '../../../participant-sdk/src/postgres';
import { newerLayout } from '../log-errors';
import * as sql from './postgres-log-sql';

// Distinct from the participant marker's twopc_marker_migrations: the log and
// a marker table may share a schema, and each is migrated on its own.
const MIGRATIONS_TABLE = 'twopc_log_migrations';

/** Numbered, append-only: a released migration is never edited, a change is a new version. */
export const LOG_MIGRATIONS: readonly SchemaMigration[] = [
  { version: 1, name: 'create twopc_log_records and twopc_log_transactions', up: sql.createLogTables },
  { version: 2, name: 'create twopc_log_leases (coordinator instances, fencing tokens)', up: sql.createLeaseTables },
  { version: 3, name: 'operator action records in twopc_log_records', up: sql.allowActionRecords },
];

/** The newest layout this code knows. */
export const LOG_LAYOUT_VERSION = LOG_MIGRATIONS[LOG_MIGRATIONS.length - 1].version;

/**
 * Brings the log's tables up to date on `client` (idle, checked out for
 * this), with the SDK's runner: one transaction behind an advisory lock keyed
 * by the schema, so coordinators starting together take turns, each migration
 * is applied exactly once, and a crash mid-way leaves the previous version. A
 * layout newer than this code is refused (`invalid-config`): an older
 * coordinator must not write a table whose meaning it does not know.
 *
 * @returns the versions applied now.
 */
export function migrateLogSchema(client: PoolClient, schema: string, where: string): Promise<number[]> {
  return applyMigrations(client, {
    schema,
    table: MIGRATIONS_TABLE,
    lockKey: `twopc:log-migrations:${schema}`,
    migrations: LOG_MIGRATIONS,
    refuseNewer: (found) => newerLayout(where, found, LOG_LAYOUT_VERSION),
  });
}
