import type { PoolClient } from 'pg';
import { newerLayout } from '../log-errors';
import * as sql from './postgres-log-sql';

interface Migration {
  version: number;
  name: string;
  up(schema: string): string;
}

/** Numbered, append-only: a released migration is never edited, a change is a new version. */
export const LOG_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'create twopc_log_records and twopc_log_transactions', up: sql.createLogTables },
  { version: 2, name: 'create twopc_log_leases (coordinator instances, fencing tokens)', up: sql.createLeaseTables },
];

/** The newest layout this code knows. */
export const LOG_LAYOUT_VERSION = LOG_MIGRATIONS[LOG_MIGRATIONS.length - 1].version;

/**
 * Brings the log's tables up to date on `client` (idle, checked out for
 * this). All of it runs in one transaction behind an advisory lock keyed by
 * the schema: coordinators starting together take turns, each migration is
 * applied exactly once, and PostgreSQL DDL being transactional, a crash
 * mid-way leaves the previous version. A layout newer than this code is
 * refused (`invalid-config`): an older coordinator must not write a table
 * whose meaning it does not know.
 *
 * @returns the versions applied now.
 */
export async function migrateLogSchema(client: PoolClient, schema: string, where: string): Promise<number[]> {
  const applied: number[] = [];
  await client.query('BEGIN');
  try {
    await client.query(sql.migrationLock(), [`twopc:log-migrations:${schema}`]);
    // CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the database even
    // when the schema exists; checking first lets a pre-created schema do without it.
    const exists = (await client.query(sql.schemaExists(), [schema])).rows.length > 0;
    if (!exists) await client.query(sql.createSchema(schema));
    await client.query(sql.createMigrationsTable(schema));
    const current = Number((await client.query<{ version: number }>(sql.currentMigration(schema))).rows[0].version);
    if (current > LOG_LAYOUT_VERSION) throw newerLayout(where, current, LOG_LAYOUT_VERSION);
    for (const migration of LOG_MIGRATIONS) {
      if (migration.version <= current) continue;
      await client.query(migration.up(schema));
      await client.query(sql.recordMigration(schema), [migration.version, migration.name]);
      applied.push(migration.version);
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
  return applied;
}
