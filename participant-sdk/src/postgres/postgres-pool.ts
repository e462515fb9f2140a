/**
 * The subset of a `pg` pool the adapter needs, typed structurally (like
 * Kysely's `PostgresPool`), so `pg` is not a hard dependency: a `pg.Pool`
 * fits as is, and tests can wrap one to count round trips or inject faults.
 *
 * @example
 * import { Pool } from 'pg';
 * const pool: PostgresPool = new Pool({ connectionString: process.env.DATABASE_URL });
 */
export interface PostgresPool {
  connect(): Promise<PostgresPoolClient>;
  /** pg's Pool emits `error` for idle clients whose server went away; without a listener that would crash the process. */
  on?(event: 'error', listener: (err: Error) => void): unknown;
  removeListener?(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * pg's query config, as ORMs send it: Drizzle and Prisma read rows as arrays
 * (`rowMode: 'array'`, so that two columns of one name both survive a join)
 * with their own type parsers (`types`). pg merges `values` given beside it.
 */
export interface PostgresQueryConfig {
  text: string;
  values?: readonly unknown[];
  rowMode?: 'array';
  /** pg's `{ getTypeParser(oid, format) }`, passed through untouched. */
  types?: unknown;
  /** A named (server-side prepared) statement. */
  name?: string;
}

/**
 * One checked-out connection. `query` without values uses the simple
 * protocol, so a text may hold several statements. The SDK itself sends only
 * texts; a query config comes from application code in a branch (an ORM),
 * and goes to the driver as it is.
 */
export interface PostgresPoolClient {
  query(text: string | PostgresQueryConfig, values?: readonly unknown[]): Promise<PostgresQueryResult | PostgresQueryResult[]>;
  /** `release(err)` destroys the connection instead of returning it to the pool. */
  release(err?: Error | boolean): void;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
  /**
   * pg 8.16+: the transaction status the server sent with its last
   * ReadyForQuery ('I' idle, 'T' in a block, 'E' in a failed block). Optional:
   * without it the adapter asks the server with SQL instead.
   */
  getTransactionStatus?(): string | null;
}

/** pg's result shape; a multi-statement text yields one of these per statement. */
export interface PostgresQueryResult<R = Record<string, unknown>> {
  command: string;
  rowCount: number | null;
  rows: R[];
}

/** One result per statement, whether the driver answered with one result or an array. */
export function resultsOf(result: PostgresQueryResult | PostgresQueryResult[]): PostgresQueryResult[] {
  return Array.isArray(result) ? result : [result];
}
