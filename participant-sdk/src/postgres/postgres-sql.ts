import { createHash } from 'node:crypto';
import { TwopcError } from '../errors';
import { isTxId, validateGid } from '../gid';
import { CLUSTER_HISTORY, committedInCluster } from './xid-proof-sql';

// Every SQL text of the direct PostgreSQL adapter. GIDs and transaction ids are
// spliced as literals only where PostgreSQL takes no bind parameter (PREPARE
// TRANSACTION, COMMIT/ROLLBACK PREPARED) or where the statement must share one
// simple-protocol round trip with them (which allows no parameters either);
// each such function validates its input right here, so no caller can splice
// an unchecked value. Everything else uses bind parameters.

export const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
const MARKER = 'twopc_marker';
/** The table recording the marker schema's migrations (see schema-migrations). */
export const MARKER_MIGRATIONS_TABLE = 'twopc_marker_migrations';
// Savepoints are refused outside a transaction block (25P01). Prefixed to the
// statements that end a branch, they make a branch whose transaction the
// application already ended (a COMMIT sent through the branch client) fail
// instead of PREPARE-ing an empty implicit transaction and voting yes (a
// multi-statement text outside a block is one implicit transaction, and
// PREPARE TRANSACTION prepares it, with only a warning). The texts below
// leave it out (`guarded` false) only when the connection's own status says
// the block is open (see HeldBranch.inOpenBlock); the guard is the fallback.
const IN_BLOCK_GUARD = 'SAVEPOINT twopc_in_block; RELEASE SAVEPOINT twopc_in_block; ';

function inBlock(guarded: boolean): string {
  return guarded ? IN_BLOCK_GUARD : '';
}

function schemaName(schema: string): string {
  if (!SCHEMA_PATTERN.test(schema)) {
    throw new TwopcError('invalid-config', `schema must match ${SCHEMA_PATTERN} (got ${JSON.stringify(schema)})`, { field: 'schema' });
  }
  return `"${schema}"`;
}

function gidLiteral(gid: string): string {
  return `'${validateGid(gid)}'`;
}

function txIdLiteral(txId: string): string {
  if (!isTxId(txId)) throw new TwopcError('invalid-input', `txId must be a lower-case UUID (got ${JSON.stringify(txId)})`, { field: 'txId' });
  return `'${txId}'`;
}

// Inserts the marker only if the branch has an xid, i.e. wrote something: a
// branch without writes must not get one (it would make it a writer).
function insertMarker(schema: string, gid: string, txId: string): string {
  return `INSERT INTO ${schemaName(schema)}.${MARKER}${MARKER_VALUES}${gidLiteral(gid)}, ${txIdLiteral(txId)} WHERE pg_current_xact_id_if_assigned() IS NOT NULL`;
}
// What every PREPARE and one-phase COMMIT text holds just before the branch's GID literal.
const MARKER_VALUES = ' (gid, tx_id) SELECT ';

// pg_stat_activity.application_name holds NAMEDATALEN - 1 bytes.
const APPLICATION_NAME_MAX = 63;
const TAG_PATTERN = /^[a-z0-9_-]{1,63}$/;

/**
 * The tag a branch's backend carries in application_name for the branch's
 * whole life, so any session can find (and end) the backend that holds it:
 * the GID itself when it fits, else a digest of it (never a GID: it has `-`).
 */
export function branchTag(gid: string): string {
  const valid = validateGid(gid);
  if (valid.length <= APPLICATION_NAME_MAX) return valid;
  return `twopc-sha256-${createHash('sha256').update(valid).digest('hex').slice(0, 40)}`;
}

function tagLiteral(tag: string): string {
  if (!TAG_PATTERN.test(tag)) throw new TwopcError('invalid-input', `branch tag must match ${TAG_PATTERN} (got ${JSON.stringify(tag)})`, { field: 'tag' });
  return `'${tag}'`;
}

/**
 * Opens branch `gid` and tags its backend (one round trip). SET LOCAL: the
 * tag ends with the transaction (PREPARE, COMMIT or ROLLBACK reset it), so a
 * pooled connection carries it only while it holds the branch, and
 * PostgreSQL shows it in pg_stat_activity from here on (even with
 * track_activities off). `identify` also reports the backend's pid and the
 * transaction's start time (epoch seconds, exact numeric text): after a lost
 * connection they identify the old backend even if its pid is reused (a new
 * backend starts later). Results: BEGIN, SET[, the identity row].
 */
export function beginBranch(gid: string, identify: boolean): string {
  const open = `BEGIN; SET LOCAL application_name = ${tagLiteral(branchTag(gid))}`;
  return identify ? `${open}; SELECT pg_backend_pid() AS pid, extract(epoch FROM now())::text AS xact_start` : open;
}

export function begin(): string {
  return 'BEGIN';
}

export function commit(): string {
  return 'COMMIT';
}

export function rollback(): string {
  return 'ROLLBACK';
}

/** Does the open branch have an xid (has it written)? The last result answers. */
export function probeWrites(guarded = true): string {
  return `${inBlock(guarded)}SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS wrote`;
}

/** Ends, after probeWrites said it wrote nothing, a branch locally (no xid: no WAL, no flush). */
export function commitLocal(): string {
  return 'COMMIT';
}

/** Phase 1 in one round trip: marker (if the branch wrote) and PREPARE. The last two results: INSERT, PREPARE. */
export function prepareBranch(schema: string, gid: string, txId: string, guarded = true): string {
  return `${inBlock(guarded)}${insertMarker(schema, gid, txId)}; PREPARE TRANSACTION ${gidLiteral(gid)}`;
}

/**
 * Phase 1 under commitProof `xid`, in one round trip: the branch's transaction
 * id (null when it wrote nothing), the cluster history it belongs to
 * (`history`: select-list columns, see ClusterHistories), and PREPARE. No row
 * is written. The last two results: SELECT, PREPARE.
 */
export function prepareBranchXid(gid: string, history: string, guarded = true): string {
  return `${inBlock(guarded)}SELECT pg_current_xact_id_if_assigned()::text AS xid, ${history}; PREPARE TRANSACTION ${gidLiteral(gid)}`;
}

/**
 * $1 = gid. The full (xid8) transaction id of a prepared branch:
 * pg_prepared_xacts shows 32 bits, placed here at or above the snapshot's
 * xmin, the oldest transaction still running: a prepared one counts as
 * running, so its xid is never below it, and never 2^31 above it (wraparound
 * protection stops the server first). Not below xmax: xmax is the last
 * *completed* xid + 1, and a prepared transaction has not completed, so its
 * xid can be at or above it (several branches prepared back to back).
 */
export function preparedXid(): string {
  return `SELECT (n + (x - n % ${XID_SPACE} + ${XID_SPACE}) % ${XID_SPACE})::text AS xid, ${CLUSTER_HISTORY} AS cluster
    FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS n, transaction::text::bigint AS x
      FROM pg_prepared_xacts WHERE gid = $1 AND database = current_database()) s`;
}

/** One-phase commit in one round trip: marker (if the branch wrote) and a durable COMMIT. The last result: COMMIT. */
export function commitOnePhase(schema: string, gid: string, txId: string, guarded = true): string {
  // The plain COMMIT is the transaction's decision, so it must be durable when acknowledged
  // whatever the database's synchronous_commit (with `off`, a crash right after the
  // acknowledgement loses it; PREPARE and COMMIT PREPARED are flushed regardless).
  return `${inBlock(guarded)}SET LOCAL synchronous_commit = on; ${insertMarker(schema, gid, txId)}; COMMIT`;
}

export function commitPrepared(gid: string): string {
  return `COMMIT PREPARED ${gidLiteral(gid)}`;
}

export function rollbackPrepared(gid: string): string {
  return `ROLLBACK PREPARED ${gidLiteral(gid)}`;
}

/** $1 = gid. The marker commits atomically with the branch's writes: visible means committed. */
export function markerExists(schema: string): string {
  return `SELECT 1 AS found FROM ${schemaName(schema)}.${MARKER} WHERE gid = $1`;
}

/** $1 = gid. Prepared in this database? */
export function isPrepared(): string {
  return 'SELECT 1 AS found FROM pg_prepared_xacts WHERE gid = $1 AND database = current_database()';
}

/**
 * Is the branch prepared (in this database), and is its marker visible
 * (committed)? Two statements in one round trip, in this order: each takes its
 * own snapshot, so a branch found not prepared has its commit, if any, visible
 * to the marker lookup (COMMIT PREPARED makes the commit visible before it
 * removes the prepared transaction). In one statement the snapshot would come
 * first and a COMMIT PREPARED finishing in between would read as neither.
 */
export function branchState(schema: string, gid: string, proof?: { xid: string; cluster?: string }): string {
  const g = gidLiteral(gid);
  // With the xid its yes vote carried (commitProof `xid`: no marker for a two-phase branch), the commit
  // log tells too, if it is the commit log of the cluster history the xid was read in.
  const byXid = proof === undefined ? '' : ` OR ${committedInCluster(proof)}`;
  return `SELECT EXISTS (SELECT 1 FROM pg_prepared_xacts WHERE gid = ${g} AND database = current_database()) AS prepared;
    SELECT EXISTS (SELECT 1 FROM ${schemaName(schema)}.${MARKER} WHERE gid = ${g})${byXid} AS committed`;
}

// $1 = the branch's tag, $2 = its GID. The backends of this database (other
// than this session) that hold the branch: tagged with it, or running its
// PREPARE or one-phase COMMIT (a branch begun by a version that did not tag:
// those texts insert its marker; matching the quotes too keeps `…_1` from
// matching `…_10`, and a mere lookup of the branch is never matched).
const BRANCH_HOLDERS = `datname = current_database() AND pid <> pg_backend_pid()
    AND (application_name = $1 OR (state = 'active' AND strpos(query, '${MARKER}${MARKER_VALUES}''' || $2 || '''') > 0))`;

/** $1 = tag, $2 = gid, $3 = wait ms. Terminates the backends holding the branch and waits (PostgreSQL 14+) for them to exit. */
export function terminateBranchHolders(): string {
  return `SELECT pid, pg_terminate_backend(pid, $3::bigint) AS gone FROM pg_stat_activity WHERE ${BRANCH_HOLDERS}`;
}

/** $1 = tag, $2 = gid. */
export function branchHolders(): string {
  return `SELECT pid FROM pg_stat_activity WHERE ${BRANCH_HOLDERS}`;
}

/** $1 = `<prefix>_`. Prepared transactions of this database whose GID starts with it. */
export function listPrepared(): string {
  return `SELECT gid, (extract(epoch FROM prepared) * 1000)::float8 AS prepared_at
    FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1) ORDER BY prepared, gid`;
}

export function serverSettings(): string {
  return `SELECT current_setting('max_prepared_transactions')::int AS max_prepared_transactions,
    current_setting('max_connections')::int AS max_connections, current_database() AS database,
    current_setting('server_version_num')::int AS server_version_num, version() AS version`;
}

// $1 = pid, $2 = the branch's xact_start (epoch text). A backend with that pid
// that started no later than the branch's transaction is the branch's own
// backend; one that started later reused the pid.
const OLD_BACKEND = 'pid = $1 AND extract(epoch FROM backend_start) <= $2::numeric';

/** $1 = pid, $2 = xact_start, $3 = wait ms. Terminates the old backend and waits (PostgreSQL 14+) for it to exit. */
export function terminateOldBackend(): string {
  return `SELECT pg_terminate_backend(pid, $3::bigint) AS gone FROM pg_stat_activity WHERE ${OLD_BACKEND}`;
}

/** $1 = pid, $2 = xact_start. Cancels the statement the backend is running, if any (an idle backend ignores it). */
export function cancelBackendStatement(): string {
  return `SELECT pg_cancel_backend(pid) AS cancelled FROM pg_stat_activity WHERE ${OLD_BACKEND}`;
}

/** $1 = pid, $2 = xact_start. */
export function oldBackendAlive(): string {
  return `SELECT 1 AS alive FROM pg_stat_activity WHERE ${OLD_BACKEND}`;
}

// Marker pruning (see PostgresParticipant.pruneMarkers). A marker row is
// inserted inside its branch, so its created_at is the branch's BEGIN, not its
// commit, and a branch may stay in doubt for days: the age that matters is the
// commit's, which PostgreSQL does not keep (track_commit_timestamp is off by
// default). Each pass therefore records a horizon, the oldest transaction still
// running (prepared ones included) as of a clock reading: every xid below it had
// finished by then. A visible marker has committed; if its xid (the row's xmin)
// is below a horizon taken at least the retention ago, its commit is at least
// that old. A prepared branch's marker is uncommitted, so no DELETE sees it, and
// it holds every horizon taken meanwhile at or below its xid.
const HORIZON = 'twopc_marker_horizon';
const XID_SPACE = 4294967296;

/** Records the current horizon (pg_snapshot_xmin) with a clock reading taken after it. */
export function recordMarkerHorizon(schema: string): string {
  return `INSERT INTO ${schemaName(schema)}.${HORIZON} (taken_at, horizon) SELECT clock_timestamp(), pg_snapshot_xmin(pg_current_snapshot())`;
}

/**
 * $1 = retention in ms, $2 = batch size. Deletes one batch of markers whose
 * commit is provably older than the retention: their xid is below the newest
 * horizon recorded at least that long ago. The row's xmin is 32 bits; it is
 * placed below the next xid, which errs on the young side (kept) for a row more
 * than 2^32 transactions old. created_at (the BEGIN, before the commit) only
 * narrows the scan to the rows that can qualify.
 */
export function pruneMarkers(schema: string): string {
  const s = schemaName(schema);
  return `WITH cutoff AS (
      SELECT taken_at, horizon::text::bigint AS horizon FROM ${s}.${HORIZON}
      WHERE taken_at <= clock_timestamp() - $1::float8 * interval '1 millisecond' ORDER BY taken_at DESC LIMIT 1),
    next AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xid)
    DELETE FROM ${s}.${MARKER} WHERE gid IN (
      SELECT m.gid FROM ${s}.${MARKER} m, cutoff c, next n
      WHERE m.created_at <= c.taken_at AND (n.xid % ${XID_SPACE} - m.xmin::text::bigint + ${XID_SPACE}) % ${XID_SPACE} > n.xid - c.horizon
      ORDER BY m.created_at LIMIT $2)`;
}

/** $1 = retention in ms. Forgets horizons older than the one pruning counts from now (that one and newer ones stay). */
export function pruneMarkerHorizons(schema: string): string {
  const s = schemaName(schema);
  return `DELETE FROM ${s}.${HORIZON} WHERE taken_at < (
    SELECT max(taken_at) FROM ${s}.${HORIZON} WHERE taken_at <= clock_timestamp() - $1::float8 * interval '1 millisecond')`;
}

/** $1 = lock key text. Serializes concurrent migrators until their transaction ends. */
export function migrationLock(): string {
  return 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))';
}

/** $1 = schema name. */
export function schemaExists(): string {
  return 'SELECT 1 AS found FROM pg_namespace WHERE nspname = $1';
}

export function createSchema(schema: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${schemaName(schema)}`;
}

// A migrations table (the marker's, the decision log's) is named by code, not config: held to
// the schema's pattern all the same, since it is spliced too.
function migrationsTable(schema: string, table: string): string {
  if (!SCHEMA_PATTERN.test(table)) throw new TwopcError('invalid-config', `migrations table must match ${SCHEMA_PATTERN} (got ${JSON.stringify(table)})`, { field: 'table' });
  return `${schemaName(schema)}."${table}"`;
}

export function createMigrationsTable(schema: string, table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${migrationsTable(schema, table)} (
    version int PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())`;
}

export function currentMigration(schema: string, table: string): string {
  return `SELECT coalesce(max(version), 0) AS version FROM ${migrationsTable(schema, table)}`;
}

/** $1 = version, $2 = name. */
export function recordMigration(schema: string, table: string): string {
  return `INSERT INTO ${migrationsTable(schema, table)} (version, name) VALUES ($1, $2)`;
}

export function createMarkerTable(schema: string): string {
  const s = schemaName(schema);
  return `CREATE TABLE ${s}.${MARKER} (
      gid text PRIMARY KEY,
      tx_id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now());
    CREATE INDEX ${MARKER}_created_at ON ${s}.${MARKER} USING brin (created_at)`;
}

export function createMarkerHorizonTable(schema: string): string {
  const s = schemaName(schema);
  return `CREATE TABLE ${s}.${HORIZON} (
      taken_at timestamptz NOT NULL,
      horizon xid8 NOT NULL);
    CREATE INDEX ${HORIZON}_taken_at ON ${s}.${HORIZON} (taken_at)`;
}
