import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { SentButUnanswered, isConnectionLost } from './postgres-log-failures';

/** The store's two pools: they differ only in `synchronous_commit`. */
export interface LogPools {
  /** synchronous_commit=on: decisions (and reads, migrations, compaction). */
  forced: Pool;
  /** synchronous_commit=off: appends, which need not be forced; one connection. */
  relaxed: Pool;
}

/**
 * `synchronous_commit` goes in the connection's startup packet (`options`),
 * so it holds from the first statement on every connection whatever the
 * server's or the role's default, with no extra round trip and no window in
 * which a fresh connection runs with the default. Options already in the
 * connection string are kept, ours appended (the last setting wins).
 */
function poolConfig(connectionString: string, synchronousCommit: 'on' | 'off', max: number): PoolConfig {
  const url = new URL(connectionString);
  const given = url.searchParams.get('options');
  url.searchParams.delete('options');
  const ours = `-c synchronous_commit=${synchronousCommit}`;
  return {
    connectionString: url.toString(),
    options: given ? `${given} ${ours}` : ours,
    max,
    application_name: url.searchParams.get('application_name') ?? 'twopc-decision-log',
    // Short enough that a crashed server's idle connections are not handed out for long.
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: 5_000,
  };
}

/**
 * Opens both pools. Each gets an `error` listener: pg emits `error` on the
 * pool for an idle connection whose server went away (a crash, a restart),
 * and an unhandled `error` event would take the whole process down.
 */
export function openLogPools(connectionString: string, poolSize: number): LogPools {
  const ignore = () => undefined;
  const forced = new Pool(poolConfig(connectionString, 'on', poolSize));
  const relaxed = new Pool(poolConfig(connectionString, 'off', 1));
  forced.on('error', ignore);
  relaxed.on('error', ignore);
  return { forced, relaxed };
}

/**
 * Runs `fn` on a connection checked out of `pool`. While checked out, a
 * connection whose server goes away emits `error` on the client itself (the
 * pool only listens to idle ones): the listener here keeps that from
 * crashing the process, and the failed query reports it. A connection that
 * failed that way is destroyed on release instead of going back to the pool.
 */
export async function checkedOut<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (e: Error) => {
    broken = e;
  };
  client.on('error', onError);
  try {
    return await fn(client);
  } catch (e) {
    const original = e instanceof SentButUnanswered ? e.original : e;
    if (isConnectionLost(original)) broken ??= original as Error;
    throw e;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}
