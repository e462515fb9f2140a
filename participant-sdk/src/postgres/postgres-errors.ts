/**
 * What a PostgreSQL (or `pg` driver) error means for two-phase commit.
 *
 * - `no-such-prepared`: 42704 — for COMMIT/ROLLBACK PREPARED, the GID is not prepared (never was, or already finished).
 * - `duplicate-gid`: 42710 — PREPARE with a GID already in use.
 * - `prepared-transactions-disabled`: 55000 "prepared transactions are disabled" (max_prepared_transactions = 0).
 * - `wrong-state`: other 55xxx and 25xxx (e.g. 25P02 failed transaction block, 55000 "prepared transaction is busy").
 * - `resources`: 53xxx (53200 "maximum number of prepared transactions reached", too many connections, disk full).
 * - `invalid-value`: 22023 (e.g. GID too long).
 * - `permission`: 42501 and 28xxx.
 * - `unsupported`: 0A000 (PREPARE after touching temporary objects, after NOTIFY, ...).
 * - `connection-lost`: no answer to the statement — socket errors, "Connection terminated", 08xxx, 57P01-57P05,
 *   25P03/25P04 session timeouts. Whether the statement took effect is unknown.
 * - `other`: anything else; the statement failed and did not take effect.
 */
export const PG_ERROR_KINDS = [
  'no-such-prepared',
  'duplicate-gid',
  'prepared-transactions-disabled',
  'wrong-state',
  'resources',
  'invalid-value',
  'permission',
  'unsupported',
  'connection-lost',
  'other',
] as const;
export type PgErrorKind = (typeof PG_ERROR_KINDS)[number];

export interface PgErrorClass {
  kind: PgErrorKind;
  /** SQLSTATE, when the server answered with one. */
  sqlState?: string;
  message: string;
}

// errno codes Node's net/dns layer puts on socket errors.
const SOCKET_ERRNOS = new Set([
  'ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH',
  'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'ERR_SOCKET_CLOSED',
]);
// Messages of errors `pg` and `pg-pool` raise without a code when the connection is gone or never came.
const DRIVER_CONNECTION_MESSAGE = /connection terminated|not queryable|client was closed|timeout exceeded when trying to connect|connection timeout/i;
// 57P01 admin_shutdown (pg_terminate_backend), 57P02 crash_shutdown, 57P03 cannot_connect_now,
// 57P04 database_dropped, 57P05 idle_session_timeout: all end the session.
const SESSION_ENDING_STATES = new Set(['57P01', '57P02', '57P03', '57P04', '57P05', '25P03', '25P04']);
const SQLSTATE = /^[0-9A-Z]{5}$/;
// Matched only to tell this 55000 apart from other 55000s; start() checks the setting itself, so a
// translated server message (lc_messages) loses nothing but the nicer error on this path.
const DISABLED_MESSAGE = /prepared transactions are disabled/i;

/**
 * The one place that maps SQLSTATEs and driver errors to what they mean for
 * the protocol; every other part of the adapter switches on `kind`.
 *
 * @example
 * const c = classifyPgError(err);
 * if (c.kind === 'no-such-prepared') { ... } else if (c.kind === 'connection-lost') { ... }
 */
export function classifyPgError(err: unknown): PgErrorClass {
  const message = err instanceof Error ? err.message : String(err);
  const code = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  const isSocketError = typeof err === 'object' && err !== null && 'syscall' in err;
  if ((code !== undefined && SOCKET_ERRNOS.has(code)) || isSocketError) return { kind: 'connection-lost', message };
  if (code === undefined || !SQLSTATE.test(code)) {
    return { kind: DRIVER_CONNECTION_MESSAGE.test(message) ? 'connection-lost' : 'other', message };
  }
  return { kind: kindOfSqlState(code, message), sqlState: code, message };
}

function kindOfSqlState(sqlState: string, message: string): PgErrorKind {
  if (SESSION_ENDING_STATES.has(sqlState) || sqlState.startsWith('08')) return 'connection-lost';
  switch (sqlState) {
    case '42704':
      return 'no-such-prepared';
    case '42710':
      return 'duplicate-gid';
    case '22023':
      return 'invalid-value';
    case '42501':
      return 'permission';
    case '0A000':
      return 'unsupported';
    case '55000':
      return DISABLED_MESSAGE.test(message) ? 'prepared-transactions-disabled' : 'wrong-state';
  }
  const sqlClass = sqlState.slice(0, 2);
  if (sqlClass === '55' || sqlClass === '25') return 'wrong-state';
  if (sqlClass === '53') return 'resources';
  if (sqlClass === '28') return 'permission';
  return 'other';
}
