import { TwopcError } from '../../engine/ports/protocol';
import { classifyPgError } from '../../../participant-sdk/src/postgres';

/**
 * A statement was sent and its connection broke before the answer came: it
 * may have committed or not. Wraps the driver's error so the retry loop can
 * tell it from a failure that certainly did nothing.
 */
export class SentButUnanswered extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original), { cause: original });
    this.name = 'SentButUnanswered';
  }
}

// lock_timeout expired (see postgres-log-pools): the statement was rolled back.
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Whether a failed attempt may simply be made again: the connection could not
 * be made or was lost (the server is restarting, a failover), the server is
 * out of connections or resources for now, or it rolled the statement back
 * for a serialization failure or deadlock (40xxx: two coordinators' batches
 * met), or a lock wait ran past lock_timeout (55P03: it waited behind a
 * decision whose commit is held up). In each case the statement took no
 * effect — or, for a lost connection, the caller only retries statements
 * that are idempotent.
 * SQLSTATE mapping itself stays in `classifyPgError`.
 */
export function isTransientPgError(e: unknown): boolean {
  if (e instanceof TwopcError) return false;
  const original = e instanceof SentButUnanswered ? e.original : e;
  const c = classifyPgError(original);
  return c.kind === 'connection-lost' || c.kind === 'resources' || (c.sqlState?.startsWith('40') ?? false) || c.sqlState === LOCK_NOT_AVAILABLE;
}

/** Whether the connection itself failed (as opposed to the server answering with an error). */
export function isConnectionLost(e: unknown): boolean {
  return classifyPgError(e).kind === 'connection-lost';
}
