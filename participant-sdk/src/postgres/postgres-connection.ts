import { setTimeout as sleep } from 'node:timers/promises';
import { TwopcError } from '../errors';
import { classifyPgError } from './postgres-errors';
import type { PostgresPool, PostgresPoolClient } from './postgres-pool';
import { resultsOf } from './postgres-pool';
import * as sql from './postgres-sql';

/**
 * The backend that ran a branch: its pid, and the start (epoch seconds, exact
 * text) of the first transaction seen on its connection, which no later backend
 * reusing the pid can predate.
 */
export interface BackendIdentity {
  pid: number;
  xactStart: string;
}

/** Who is asking, for messages and for reporting connection errors. */
export interface ConnectionContext {
  pool: PostgresPool;
  participant: string;
  onConnectionError?: (err: Error) => void;
}

const POLL_MS = 25;

/** Checks a connection out; a failure means nothing was sent, so a retry is always safe. */
export async function connect(ctx: ConnectionContext): Promise<PostgresPoolClient> {
  try {
    return await ctx.pool.connect();
  } catch (e) {
    const c = classifyPgError(e);
    throw new TwopcError('participant-unavailable', `participant "${ctx.participant}": cannot get a connection: ${c.message}`, { participant: ctx.participant, sqlState: c.sqlState }, { cause: e });
  }
}

/**
 * Runs `fn` on a pooled connection. pg-pool drops its own `error` listener
 * while a client is checked out, so one is attached here: a server dying
 * mid-call must not crash the process. A lost connection is destroyed, not
 * returned to the pool.
 */
export async function withPooledClient<T>(ctx: ConnectionContext, fn: (client: PostgresPoolClient) => Promise<T>): Promise<T> {
  const client = await connect(ctx);
  const onError = (err: Error): void => ctx.onConnectionError?.(err);
  client.on('error', onError);
  let lost: Error | undefined;
  try {
    return await fn(client);
  } catch (e) {
    if (classifyPgError(e).kind === 'connection-lost') lost = e instanceof Error ? e : new Error(String(e));
    throw e;
  } finally {
    // release() puts pg-pool's listener back before ours goes: never a moment without one.
    client.release(lost);
    client.removeListener('error', onError);
  }
}

/**
 * Best effort: cancels the statement a held branch's backend is running, so
 * a ROLLBACK queued behind it (a timeout) need not wait for it. Safe even if
 * the cancel lands on that ROLLBACK instead: it then fails, the connection is
 * destroyed, and the server rolls back a branch that was never prepared.
 */
export async function cancelRunningStatement(ctx: ConnectionContext, backend: BackendIdentity): Promise<void> {
  await withPooledClient(ctx, (client) => client.query(sql.cancelBackendStatement(), [backend.pid, backend.xactStart])).catch(() => undefined);
}

/**
 * Resolves once the backend of a lost branch connection no longer exists.
 * Until then it may still be executing the PREPARE or COMMIT whose answer was
 * lost, so neither ROLLBACK PREPARED nor a marker lookup could be trusted.
 * It is terminated rather than merely awaited: a backend cut off by a network
 * fault can sit for hours until TCP keepalive notices, holding its locks.
 * Throws `outcome-unknown` when it is still there after `waitMs` (the caller
 * retries later); throws the driver error when the server cannot be asked.
 */
export async function ensureOldBackendGone(ctx: ConnectionContext, backend: BackendIdentity, waitMs: number): Promise<void> {
  await endBackends(ctx, {
    terminate: sql.terminateOldBackend(),
    alive: sql.oldBackendAlive(),
    args: [backend.pid, backend.xactStart],
    waitMs,
    stillThere: () =>
      new TwopcError(
        'outcome-unknown',
        `participant "${ctx.participant}": backend ${backend.pid} of a lost branch connection is still running after ${waitMs} ms; its last statement may yet take effect`,
        { participant: ctx.participant, pid: backend.pid },
      ),
  });
}

/**
 * Ends every backend, of any process, that still holds branch `gid`: the one
 * tagged with it (from its BEGIN until PREPARE, COMMIT or ROLLBACK), or one
 * running a statement that names it. Waits for each to exit, so what the
 * database says of the branch afterwards is final: a held branch was rolled
 * back by the server, and a PREPARE or one-phase COMMIT it was running either
 * took effect before the exit (prepared, or committed with its marker) or
 * never will. Without this, a branch another process holds idle in
 * transaction reads as unknown, is decided abort, and can still commit.
 * Throws `outcome-unknown` when one is still there after `waitMs` (e.g. a
 * backend of another role this one may not signal).
 */
export async function endBranchHolders(ctx: ConnectionContext, gid: string, waitMs: number): Promise<void> {
  await endBackends(ctx, {
    terminate: sql.terminateBranchHolders(),
    alive: sql.branchHolders(),
    args: [sql.branchTag(gid), gid],
    waitMs,
    stillThere: () =>
      new TwopcError(
        'outcome-unknown',
        `participant "${ctx.participant}": a backend still holds branch ${gid} after ${waitMs} ms (a connection of another process this role may not terminate?); its last statement may yet take effect`,
        { participant: ctx.participant, gid },
      ),
  });
}

/**
 * Terminates the backends `terminate` finds (it takes `args` and `waitMs`,
 * and answers `gone` per backend), then polls `alive` (with `args`) until
 * none is left; throws `stillThere()` once `waitMs` has passed.
 */
async function endBackends(
  ctx: ConnectionContext,
  what: { terminate: string; alive: string; args: unknown[]; waitMs: number; stillThere: () => TwopcError },
): Promise<void> {
  const deadline = Date.now() + what.waitMs;
  await withPooledClient(ctx, async (client) => {
    try {
      const rows = resultsOf(await client.query(what.terminate, [...what.args, what.waitMs]))[0].rows;
      if (rows.every((row) => row.gone === true)) return;
    } catch (e) {
      // Not allowed to signal it (another role's backend, and no pg_signal_backend): wait for it to go by itself.
      if (classifyPgError(e).kind !== 'permission') throw e;
    }
    for (;;) {
      if (resultsOf(await client.query(what.alive, what.args))[0].rows.length === 0) return;
      if (Date.now() >= deadline) break;
      await sleep(POLL_MS);
    }
    throw what.stillThere();
  });
}
