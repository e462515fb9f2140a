import type { Socket } from 'node:net';
import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { SentButUnanswered, isConnectionLost } from './postgres-log-failures';

/** The store's two pools: they differ only in `synchronous_commit`. */
export interface LogPools {
  /** synchronous_commit=on: decisions (and reads, migrations, compaction). */
  forced: Pool;
  /** synchronous_commit=off: appends, which need not be forced; one connection. */
  relaxed: Pool;
  /** How long one statement (or one connection attempt) may go unanswered. */
  callTimeoutMs: number;
}

// An idle pooled connection whose server vanished (a host gone without a FIN) is found by TCP
// keepalive probes after this, instead of being handed out to a call that then waits on it.
const KEEPALIVE_DELAY_MS = 5_000;

/**
 * Settings go in the connection's startup packet (`options`), so they hold
 * from the first statement on every connection whatever the server's or the
 * role's default, with no extra round trip and no window in which a fresh
 * connection runs with the default. Options already in the connection string
 * are kept, ours appended (the last setting wins).
 *
 * - `synchronous_commit` is what the pool is for.
 * - `lock_timeout`: a statement that waits for a row or index lock (behind a
 *   decision whose commit waits for a synchronous standby that is down) ends
 *   with an error the server rolls back, instead of the backend waiting on
 *   long after the client gave up on it and closed the connection; retries
 *   would otherwise pile up waiting backends until max_connections.
 *   Deliberately not `statement_timeout`: its timer can fire between the
 *   statement's end and its commit, and a cancel that reaches a commit waiting
 *   for a synchronous standby ends the wait and reports success for a commit
 *   the standby may not have.
 */
function poolConfig(connectionString: string, synchronousCommit: 'on' | 'off', max: number, callTimeoutMs: number): PoolConfig {
  const url = new URL(connectionString);
  const given = url.searchParams.get('options');
  url.searchParams.delete('options');
  const ours = `-c synchronous_commit=${synchronousCommit} -c lock_timeout=${callTimeoutMs}`;
  return {
    connectionString: url.toString(),
    options: given ? `${given} ${ours}` : ours,
    max,
    application_name: url.searchParams.get('application_name') ?? 'twopc-decision-log',
    // Short enough that a crashed server's idle connections are not handed out for long.
    idleTimeoutMillis: 10_000,
    // Covers the TCP connect and the startup exchange: a server that accepts and never answers.
    connectionTimeoutMillis: callTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  };
}

/**
 * Opens both pools. Each gets an `error` listener: pg emits `error` on the
 * pool for an idle connection whose server went away (a crash, a restart),
 * and an unhandled `error` event would take the whole process down.
 */
export function openLogPools(connectionString: string, poolSize: number, callTimeoutMs: number): LogPools {
  const ignore = () => undefined;
  const forced = new Pool(poolConfig(connectionString, 'on', poolSize, callTimeoutMs));
  const relaxed = new Pool(poolConfig(connectionString, 'off', 1, callTimeoutMs));
  forced.on('error', ignore);
  relaxed.on('error', ignore);
  return { forced, relaxed, callTimeoutMs };
}

/** The error an attempt fails with when the server did not answer in time: a lost connection, by its code. */
function callTimedOut(ms: number): Error {
  return Object.assign(new Error(`no answer from the server within ${ms} ms (callTimeoutMs): connection closed`), { code: 'ETIMEDOUT' });
}

/**
 * Runs `fn` on a connection checked out of one of the pools.
 * While checked out, a connection whose server goes away emits `error` on the
 * client itself (the pool only listens to idle ones): the listener here keeps
 * that from crashing the process, and the failed query reports it. A
 * connection that failed that way is destroyed on release instead of going
 * back to the pool.
 *
 * A server that stops answering without closing the connection (a network
 * that drops packets, a frozen host) would hold the call until the kernel
 * gives up on the socket — many minutes, or never when the far end still
 * acknowledges TCP. So after `callTimeoutMs` the socket is destroyed: the
 * statement fails as on any lost connection (ETIMEDOUT), and the caller
 * treats it as "sent, not answered" — which for a decision means the register
 * is read back, never that nothing was decided.
 */
export async function checkedOut<T>(pools: LogPools, which: 'forced' | 'relaxed', fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pools[which].connect();
  let broken: Error | undefined;
  const onError = (e: Error) => {
    broken ??= e;
  };
  client.on('error', onError);
  const timer = setTimeout(() => {
    const e = callTimedOut(pools.callTimeoutMs);
    broken ??= e;
    socketOf(client)?.destroy(e);
  }, pools.callTimeoutMs);
  try {
    return await fn(client);
  } catch (e) {
    const original = e instanceof SentButUnanswered ? e.original : e;
    if (isConnectionLost(original)) broken ??= original as Error;
    throw e;
  } finally {
    clearTimeout(timer);
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/** The client's socket (pg keeps it on `connection.stream`; not in its typings). */
function socketOf(client: PoolClient): Socket | undefined {
  return (client as unknown as { connection?: { stream?: Socket } }).connection?.stream;
}
