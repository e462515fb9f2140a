import { TwopcError } from '../errors';

// The SQL of commitProof `xid` that needs no GID: where a branch's xid is
// valid, and what became of it. Values are spliced only after the checks here.

/**
 * Which history of which cluster this session's transactions belong to:
 * `<system identifier>.<timeline>`. An xid means the same transaction only
 * under the same one: another cluster (a dump restored elsewhere, a DSN
 * repointed) has another system identifier, and a promoted standby or a
 * point-in-time restore starts a new timeline whose xids after the switch
 * are not the old primary's. Readable by any role (no superuser needed).
 */
export const CLUSTER_HISTORY = `(SELECT system_identifier FROM pg_control_system())::text || '.' ||
    ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint::text`;

/** How the first PREPARE on a connection reports the postmaster's start time (see clusterColumns). */
export const POSTMASTER_STARTED = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$/;

/**
 * Select-list columns giving CLUSTER_HISTORY's two halves at a fraction of its
 * price, for the PREPARE round trip (see ClusterHistories): `timeline`, the
 * hex of the WAL file name (the conversion to decimal, as costly in SQL as the
 * control file read, is done by the caller); `system`, the system identifier,
 * read from the control file only when no postmaster start time is known for
 * the connection or the postmaster answering started at another time (else
 * null); and, when none is known, `started`, to remember.
 */
export function clusterColumns(started?: string): string {
  const timeline = 'substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS timeline';
  if (started === undefined) {
    return `${timeline}, (SELECT system_identifier FROM pg_control_system())::text AS system,
      to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS started`;
  }
  if (!POSTMASTER_STARTED.test(started)) throw new TwopcError('invalid-input', `postmaster start time must be ${POSTMASTER_STARTED} (got ${JSON.stringify(started)})`, { field: 'started' });
  // CASE evaluates its ELSE only when the WHEN is false, and pg_control_system() is volatile, so
  // the planner does not evaluate it ahead either: the control file is read only on a mismatch.
  return `${timeline}, CASE WHEN pg_postmaster_start_time() = '${started}'::timestamptz THEN NULL ELSE (pg_control_system()).system_identifier::text END AS system`;
}

const XID_PATTERN = /^[0-9]{1,20}$/;
const CLUSTER_PATTERN = /^-?[0-9]{1,20}\.[0-9]{1,10}$/;

function xidLiteral(xid: string): string {
  if (!XID_PATTERN.test(xid)) throw new TwopcError('invalid-input', `xid must be a transaction id in decimal (got ${JSON.stringify(xid)})`, { field: 'xid' });
  return `'${xid}'::xid8`;
}

function clusterLiteral(cluster: string): string {
  if (!CLUSTER_PATTERN.test(cluster)) throw new TwopcError('invalid-input', `cluster must be <system identifier>.<timeline> (got ${JSON.stringify(cluster)})`, { field: 'cluster' });
  return `'${cluster}'`;
}

/**
 * $1 = xid (decimal xid8), $2 = the cluster history it was read in (null: not
 * recorded, an older vote). The cluster history answering now, and, only when
 * it is that one (CASE: an xid of another cluster is never looked up),
 * `committed`, `aborted`, `in progress` (running, or prepared), or null once
 * the commit log no longer holds it; an error for an xid not yet assigned
 * ("in the future").
 */
export function xactStatus(): string {
  return `SELECT c.cluster, CASE WHEN $2::text IS NULL OR c.cluster = $2::text THEN pg_xact_status($1::text::xid8) END AS status
    FROM (SELECT ${CLUSTER_HISTORY} AS cluster) c`;
}

/**
 * A boolean expression: the branch's xid committed, in the cluster history
 * it was read in (a proof without one, from an older vote, is not checked).
 * CASE: an xid of another history is never looked up.
 */
export function committedInCluster(proof: { xid: string; cluster?: string }): string {
  const status = `pg_xact_status(${xidLiteral(proof.xid)}) = 'committed'`;
  return proof.cluster === undefined ? status : `CASE WHEN ${CLUSTER_HISTORY} = ${clusterLiteral(proof.cluster)} THEN ${status} ELSE false END`;
}
