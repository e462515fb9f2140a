import { TwopcError } from '../../engine/ports/protocol';

// Every SQL text of the PostgreSQL decision log but its migrations table's (the
// SDK's migrations runner has those, see postgres-log-migrations). The schema is
// the only value spliced into SQL, validated right here; everything else is a
// bind parameter.

/** Allowed schema names: a plain lower-case identifier, so it needs no quoting rules beyond double quotes. */
export const LOG_SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

const RECORDS = 'twopc_log_records';
const TRANSACTIONS = 'twopc_log_transactions';
const LEASES = 'twopc_log_leases';
const LEASE_TOKENS = 'twopc_log_lease_tokens';

function s(schema: string): string {
  if (!LOG_SCHEMA_PATTERN.test(schema)) {
    throw new TwopcError('invalid-config', `schema must match ${LOG_SCHEMA_PATTERN} (got ${JSON.stringify(schema)})`, { field: 'schema' });
  }
  return `"${schema}"`;
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

/**
 * Version 3. Operator action records (the audit trail) are a record kind. They
 * never create a transaction row: one is appended only to an unfinished
 * transaction (see writeBatch).
 */
export function allowActionRecords(schema: string): string {
  return `
    ALTER TABLE ${s(schema)}.${RECORDS} DROP CONSTRAINT twopc_log_records_kind_check,
      ADD CONSTRAINT twopc_log_records_kind_check CHECK (kind IN ('begin', 'enlist', 'decision', 'complete', 'hazard', 'action'))`;
}

/**
 * Standbys streaming from this server that no commit waits for: 0 while
 * synchronous_standby_names names any, else every WAL sender but logical
 * subscribers (they hold a logical slot) and base backups (pg_basebackup's
 * application_name; state 'backup'). A failover can promote any of them, and
 * a commit it had not received yet is gone. The pid of a WAL sender and the
 * application_name of a backend are visible to every role (the other columns
 * only to pg_read_all_stats), so an unprivileged log role counts the same.
 * Cheap enough to run in every decision statement: with standby names set it
 * is one current_setting(); without, a look at the WAL sender slots.
 */
const UNSYNCED_STANDBYS = `CASE WHEN current_setting('synchronous_standby_names') <> '' THEN 0 ELSE (
    SELECT count(*) FROM pg_stat_get_wal_senders() w
    WHERE w.state IS DISTINCT FROM 'backup'
      AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.active_pid = w.pid AND s.slot_type = 'logical')
      AND NOT EXISTS (SELECT 1 FROM pg_stat_get_activity(w.pid) a WHERE a.application_name = 'pg_basebackup')
  ) END`;

/** The settings the store's durability rests on, as this session sees them, and the standbys no commit waits for. */
export function durabilitySettings(): string {
  return `SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit,
    current_setting('synchronous_standby_names') AS synchronous_standby_names, (${UNSYNCED_STANDBYS})::int AS unsynced_standbys`;
}

/** The reply row of a batch refused because standbys stream asynchronously: tx_id NULL, record this prefix and their count. */
export const UNSYNCED_REPLY = 'unsynced-standbys:';

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
 * decision only if it won; an operator action never) and completed by its first `complete`; rows are
 * upserted in tx_id order so two coordinators' batches lock them in the same
 * order.
 *
 * $6 is the writer's fencing token (null on a log without leases). A batch
 * under a lease another instance took over writes nothing and returns one row
 * of NULLs. FOR KEY SHARE holds the lease row until the batch commits: a
 * takeover (which locks it FOR UPDATE) waits for the batch, so the instance
 * taking over reads everything the old owner wrote; a batch that waited for a
 * takeover re-reads the row and finds it taken.
 *
 * $7 true (decisions, unless allowVolatile): the batch writes nothing while
 * standbys stream from the server asynchronously (see UNSYNCED_STANDBYS) and
 * returns one row (NULL, 'unsynced-standbys:<n>'): checked in the statement
 * itself, so a standby attached after open() is seen by the next decision at
 * no extra round trip, and no decision is acknowledged that a failover to it
 * could drop.
 */
export function writeBatch(schema: string): string {
  const q = s(schema);
  return `
    WITH allowed AS (
      SELECT token FROM ${q}.${LEASES} WHERE token = $6::bigint AND taken_over_by IS NULL FOR KEY SHARE
    ), fence AS (
      SELECT $6::bigint IS NULL OR EXISTS (SELECT 1 FROM allowed) AS ok
    ), standbys AS (
      SELECT CASE WHEN $7::boolean THEN (${UNSYNCED_STANDBYS})::int ELSE 0 END AS unsynced
    ), input AS (
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::double precision[], $5::text[])
        WITH ORDINALITY AS i(tx_id, kind, record, at, op_id, ord)
      WHERE (SELECT ok FROM fence) AND (SELECT unsynced FROM standbys) = 0
    ), written AS (
      INSERT INTO ${q}.${RECORDS} (tx_id, kind, op_id, record)
      SELECT tx_id, kind, op_id, record FROM input ORDER BY ord
      ON CONFLICT (tx_id) WHERE kind = 'decision' DO NOTHING
      RETURNING tx_id, kind, record
    ), seen AS (
      INSERT INTO ${q}.${TRANSACTIONS} AS t (tx_id, completed_at)
      SELECT tx_id, (array_agg(at ORDER BY ord) FILTER (WHERE kind = 'complete'))[1]
      FROM input
      WHERE kind NOT IN ('decision', 'action') OR tx_id IN (SELECT tx_id FROM written WHERE kind = 'decision')
      GROUP BY tx_id
      ORDER BY tx_id
      ON CONFLICT (tx_id) DO UPDATE SET completed_at = excluded.completed_at
        WHERE t.completed_at IS NULL AND excluded.completed_at IS NOT NULL
    )
    SELECT tx_id, NULL::text AS record FROM written WHERE kind = 'decision'
    UNION ALL
    SELECT tx_id, record FROM ${q}.${RECORDS}
    WHERE kind = 'decision' AND tx_id IN (SELECT tx_id FROM input WHERE kind = 'decision')
    UNION ALL
    SELECT NULL, NULL WHERE NOT (SELECT ok FROM fence)
    UNION ALL
    SELECT NULL, '${UNSYNCED_REPLY}' || unsynced FROM standbys WHERE unsynced > 0 AND (SELECT ok FROM fence)`;
}

/**
 * A commit that writes WAL, run where synchronous_commit=on: it flushes the
 * WAL up to itself and waits for the synchronous standbys to have it, so
 * everything committed before is durable and replicated too. The WAL record
 * is a transactional logical message (no table, no privilege beyond
 * LOGIN, any wal_level); a transaction that only takes an xid
 * (pg_current_xact_id) writes no WAL, and PostgreSQL then neither flushes
 * nor waits at its commit. Also says how many standbys no commit waits for.
 */
export function flushWal(): string {
  return `SELECT pg_logical_emit_message(true, 'twopc', 'flush')::text AS lsn, (${UNSYNCED_STANDBYS})::int AS unsynced_standbys`;
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

/**
 * $1 = the last tx id of the previous page ('' for the first), $2 = page size:
 * the next page of unfinished transactions by tx id (keyset, on the partial
 * index) and their records in `seq` order. Each row carries the page's size
 * (`n`, so a short page is known to be the last) and last tx id (the next
 * page's key), also when the page's transactions have no records (compacted
 * meanwhile: one row of nulls). The records are found by their index with
 * `= ANY(array)`, never by a scan of the whole table.
 */
export function unfinishedPage(schema: string): string {
  const q = s(schema);
  return `
    WITH page AS (
      SELECT tx_id FROM ${q}.${TRANSACTIONS} WHERE completed_at IS NULL AND tx_id > $1 ORDER BY tx_id LIMIT $2
    ), ids AS (
      SELECT array_agg(tx_id) AS ids, count(*)::int AS n, max(tx_id) AS last FROM page
    )
    SELECT ids.n, ids.last, r.seq, r.record FROM ids LEFT JOIN ${q}.${RECORDS} r ON r.tx_id = ANY(ids.ids) ORDER BY r.seq`;
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

/**
 * Version 2: leases of coordinator instances sharing this log. `token` is the
 * fencing token (from a sequence: strictly increasing, never reused).
 */
export function createLeaseTables(schema: string): string {
  const q = s(schema);
  return `
    CREATE SEQUENCE ${q}.${LEASE_TOKENS};
    CREATE TABLE ${q}.${LEASES} (
      token bigint PRIMARY KEY,
      name text NOT NULL,
      url text NOT NULL,
      registered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      expires_at timestamptz NOT NULL,
      taken_over_by bigint,
      taken_over_at timestamptz
    )`;
}

const MS = (column: string) => `(extract(epoch FROM ${column}) * 1000)::double precision`;

/** $1 name, $2 url, $3 lease ms: a new lease; returns its token and expiry. */
export function registerLease(schema: string): string {
  const q = s(schema);
  return `INSERT INTO ${q}.${LEASES} (token, name, url, expires_at)
    VALUES (nextval('${q}.${LEASE_TOKENS}'), $1, $2, clock_timestamp() + $3 * interval '1 millisecond')
    RETURNING token, ${MS('expires_at')} AS expires_at`;
}

/** $1 token, $2 lease ms: extends a lease not taken over; no row when it was. */
export function renewLease(schema: string): string {
  return `UPDATE ${s(schema)}.${LEASES} SET expires_at = clock_timestamp() + $2 * interval '1 millisecond'
    WHERE token = $1 AND taken_over_by IS NULL RETURNING token`;
}

/**
 * $1 token, $2 taker's token, $3 even if live: takes a lease over. The row is
 * locked FOR UPDATE first, which waits for write batches under that lease in
 * flight (they hold it FOR KEY SHARE; a plain UPDATE would not wait for them).
 */
export function takeOverLease(schema: string): string {
  const q = s(schema);
  return `WITH target AS (
      SELECT token FROM ${q}.${LEASES}
      WHERE token = $1 AND taken_over_by IS NULL AND token <> $2
      FOR UPDATE
    )
    UPDATE ${q}.${LEASES} l SET taken_over_by = $2, taken_over_at = clock_timestamp()
    FROM target t
    WHERE l.token = t.token AND l.taken_over_by IS NULL AND ($3::boolean OR l.expires_at < clock_timestamp())
    RETURNING l.token`;
}

/** Every lease and the server's clock. */
export function leaseView(schema: string): string {
  return `SELECT token, name, url, ${MS('expires_at')} AS expires_at, taken_over_by, ${MS('clock_timestamp()')} AS now
    FROM ${s(schema)}.${LEASES} ORDER BY token`;
}

/** $1 token: expires the lease now (graceful stop). */
export function releaseLease(schema: string): string {
  return `UPDATE ${s(schema)}.${LEASES} SET expires_at = clock_timestamp() - interval '1 millisecond' WHERE token = $1 AND taken_over_by IS NULL`;
}

/**
 * $1 ms: forgets leases taken over more than $1 ms ago that no unfinished
 * transaction still names as its owner (owners are read from begin records).
 */
export function pruneLeases(schema: string): string {
  const q = s(schema);
  return `DELETE FROM ${q}.${LEASES} l
    WHERE l.taken_over_at < clock_timestamp() - $1 * interval '1 millisecond'
      AND NOT EXISTS (
        SELECT 1 FROM ${q}.${TRANSACTIONS} t JOIN ${q}.${RECORDS} r ON r.tx_id = t.tx_id AND r.kind = 'begin'
        WHERE t.completed_at IS NULL AND (r.record::jsonb ->> 'owner')::bigint = l.token
      )
      AND NOT EXISTS (SELECT 1 FROM ${q}.${LEASES} o WHERE o.taken_over_by = l.token)`;
}
