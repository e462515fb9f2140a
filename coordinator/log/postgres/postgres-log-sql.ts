import { TwopcError } from '../../errors';

// Every SQL text of the PostgreSQL decision log. The schema is the only value
// spliced into SQL, validated right here; everything else is a bind parameter.

/** Allowed schema names: a plain lower-case identifier, so it needs no quoting rules beyond double quotes. */
export const LOG_SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

const RECORDS = 'twopc_log_records';
const TRANSACTIONS = 'twopc_log_transactions';
// Distinct from the participant marker's twopc_marker_migrations: the log and
// a marker table may share a schema, and each is migrated on its own.
const MIGRATIONS = 'twopc_log_migrations';

function s(schema: string): string {
  if (!LOG_SCHEMA_PATTERN.test(schema)) {
    throw new TwopcError('invalid-config', `schema must match ${LOG_SCHEMA_PATTERN} (got ${JSON.stringify(schema)})`, { field: 'schema' });
  }
  return `"${schema}"`;
}

/** $1 = lock key text. Held until the migrating transaction ends, so concurrent starters take turns. */
export function migrationLock(): string {
  return 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))';
}

/** $1 = schema name. */
export function schemaExists(): string {
  return 'SELECT 1 AS found FROM pg_namespace WHERE nspname = $1';
}

export function createSchema(schema: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${s(schema)}`;
}

export function createMigrationsTable(schema: string): string {
  return `CREATE TABLE IF NOT EXISTS ${s(schema)}.${MIGRATIONS} (
    version int PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())`;
}

export function currentMigration(schema: string): string {
  return `SELECT coalesce(max(version), 0) AS version FROM ${s(schema)}.${MIGRATIONS}`;
}

/** $1 = version, $2 = name. */
export function recordMigration(schema: string): string {
  return `INSERT INTO ${s(schema)}.${MIGRATIONS} (version, name) VALUES ($1, $2)`;
}

/**
 * Version 1. Every record of every transaction in one table, in `seq` order
 * (a transaction's history is its rows by seq). The register is the partial
 * unique index: at most one `decision` row per transaction, so
 * `INSERT … ON CONFLICT DO NOTHING` is the single assignment. `record` is
 * the JSON text the file store frames (text, not jsonb: it reads back byte
 * for byte; `record::jsonb` for ad-hoc queries). `op_id` identifies an append
 * so that a batch whose connection broke can be looked up instead of resent.
 * One row per transaction in `twopc_log_transactions` tells unfinished from
 * completed without reading every record.
 */
export function createLogTables(schema: string): string {
  const q = s(schema);
  return `
    CREATE TABLE ${q}.${RECORDS} (
      seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      tx_id text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('begin', 'enlist', 'decision', 'complete', 'hazard')),
      op_id text,
      record text NOT NULL
    );
    CREATE INDEX twopc_log_records_tx ON ${q}.${RECORDS} (tx_id, seq);
    CREATE UNIQUE INDEX twopc_log_records_decision ON ${q}.${RECORDS} (tx_id) WHERE kind = 'decision';
    CREATE TABLE ${q}.${TRANSACTIONS} (
      tx_id text PRIMARY KEY,
      completed_at double precision
    );
    CREATE INDEX twopc_log_transactions_unfinished ON ${q}.${TRANSACTIONS} (tx_id) WHERE completed_at IS NULL;
    CREATE INDEX twopc_log_transactions_completed ON ${q}.${TRANSACTIONS} (completed_at) WHERE completed_at IS NOT NULL`;
}

/** The settings the store's durability rests on, as this session sees them. */
export function durabilitySettings(): string {
  return "SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit";
}

/**
 * One batch of writes in one statement (one round trip, one commit), decisions
 * and appends alike. $1 tx ids, $2 kinds (record types), $3 record JSON,
 * $4 `at`, $5 op ids (null for decisions), all arrays of the batch's length.
 *
 * Rows go in in array order (`ORDER BY ord`), so a transaction's records in
 * one batch keep their order in `seq`. A decision row that meets an existing
 * one is dropped by ON CONFLICT DO NOTHING (the register); the statement then
 * returns, per decided transaction, either `record` NULL (its own decision
 * won: the caller has the text, so it is not sent back) or the winner that
 * was there before the statement started. A winner committed by another
 * session while this statement ran is invisible to its snapshot: the caller
 * reads those few back with `readDecisions`.
 *
 * The transaction row is created by the first record of a transaction (a
 * decision only if it won) and completed by its first `complete`; rows are
 * upserted in tx_id order so two coordinators' batches lock them in the same
 * order.
 */
export function writeBatch(schema: string): string {
  const q = s(schema);
  return `
    WITH input AS (
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::double precision[], $5::text[])
        WITH ORDINALITY AS i(tx_id, kind, record, at, op_id, ord)
    ), written AS (
      INSERT INTO ${q}.${RECORDS} (tx_id, kind, op_id, record)
      SELECT tx_id, kind, op_id, record FROM input ORDER BY ord
      ON CONFLICT (tx_id) WHERE kind = 'decision' DO NOTHING
      RETURNING tx_id, kind, record
    ), seen AS (
      INSERT INTO ${q}.${TRANSACTIONS} AS t (tx_id, completed_at)
      SELECT tx_id, (array_agg(at ORDER BY ord) FILTER (WHERE kind = 'complete'))[1]
      FROM input
      WHERE kind <> 'decision' OR tx_id IN (SELECT tx_id FROM written WHERE kind = 'decision')
      GROUP BY tx_id
      ORDER BY tx_id
      ON CONFLICT (tx_id) DO UPDATE SET completed_at = excluded.completed_at
        WHERE t.completed_at IS NULL AND excluded.completed_at IS NOT NULL
    )
    SELECT tx_id, NULL::text AS record FROM written WHERE kind = 'decision'
    UNION ALL
    SELECT tx_id, record FROM ${q}.${RECORDS}
    WHERE kind = 'decision' AND tx_id IN (SELECT tx_id FROM input WHERE kind = 'decision')`;
}

/** $1 = tx ids: their decisions, if any. */
export function readDecisions(schema: string): string {
  return `SELECT tx_id, record FROM ${s(schema)}.${RECORDS} WHERE kind = 'decision' AND tx_id = ANY($1::text[])`;
}

/** $1 = tx ids, $2 = op ids: which of those appends are stored. */
export function findAppends(schema: string): string {
  return `SELECT op_id FROM ${s(schema)}.${RECORDS} WHERE tx_id = ANY($1::text[]) AND op_id = ANY($2::text[])`;
}

/** $1 = tx id: its records in order. */
export function history(schema: string): string {
  return `SELECT seq, record FROM ${s(schema)}.${RECORDS} WHERE tx_id = $1 ORDER BY seq`;
}

/** Every record of every transaction not completed, in `seq` order (so transactions come in the order first seen). */
export function unfinishedRecords(schema: string): string {
  const q = s(schema);
  return `SELECT r.seq, r.tx_id, r.record FROM ${q}.${TRANSACTIONS} t JOIN ${q}.${RECORDS} r ON r.tx_id = t.tx_id WHERE t.completed_at IS NULL ORDER BY r.seq`;
}

/**
 * Forgets up to $2 transactions completed at or before $1, rows and records,
 * in one statement. SKIP LOCKED: two coordinators compacting at once share
 * the work instead of waiting on each other.
 */
export function forgetCompleted(schema: string): string {
  const q = s(schema);
  return `
    WITH doomed AS (
      SELECT tx_id FROM ${q}.${TRANSACTIONS}
      WHERE completed_at IS NOT NULL AND completed_at <= $1
      ORDER BY completed_at
      LIMIT $2
      FOR UPDATE SKIP LOCKED
    ), gone AS (
      DELETE FROM ${q}.${TRANSACTIONS} t USING doomed d WHERE t.tx_id = d.tx_id RETURNING t.tx_id
    ), records AS (
      DELETE FROM ${q}.${RECORDS} r USING gone g WHERE r.tx_id = g.tx_id
    )
    SELECT count(*)::int AS forgotten FROM gone`;
}

/** Counts for open() and compact(). */
export function counts(schema: string): string {
  const q = s(schema);
  return `SELECT (SELECT count(*) FROM ${q}.${RECORDS})::bigint AS records,
    (SELECT count(*) FROM ${q}.${TRANSACTIONS} WHERE completed_at IS NULL)::bigint AS unfinished,
    (SELECT count(*) FROM ${q}.${TRANSACTIONS})::bigint AS transactions`;
}

/**
 * Bytes the log's tables and indexes take on disk. Space freed by compaction
 * is reused by later rows once autovacuum has run; PostgreSQL does not hand
 * it back to the file system, so this does not shrink right after a compaction.
 */
export function tableBytes(schema: string): string {
  const q = s(schema);
  return `SELECT (pg_total_relation_size('${q}.${RECORDS}') + pg_total_relation_size('${q}.${TRANSACTIONS}'))::bigint AS bytes`;
}
