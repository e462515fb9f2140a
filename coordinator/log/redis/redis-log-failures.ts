import { TwopcError } from '../../engine/ports/protocol';

// Reply errors that mean "not now" rather than "never": the server is loading
// its AOF after a restart, busy with a script, a replica during failover, or
// refusing writes until its disk recovers (MISCONF).
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|READONLY|MASTERDOWN|CLUSTERDOWN|MISCONF|NOREPLICAS)\b/;

// What ioredis rejects a command with after `commandTimeout`.
const COMMAND_TIMED_OUT = 'Command timed out';

/**
 * Whether an attempt may be made again. Anything that is not an answer from
 * the server (connection closed, reconnect attempts exhausted, a command
 * timeout) is; of the server's answers, only the transient ones above. Every
 * write is compare-and-set, so a retry of one that did run changes nothing.
 */
export function isTransientRedisError(e: unknown): boolean {
  if (!(e instanceof Error) || e instanceof TwopcError) return false;
  if (e.name !== 'ReplyError') return true;
  return TRANSIENT_REPLY.test(e.message);
}

/** Whether a command went unanswered for `callTimeoutMs` (its connection is then suspect). */
export function isCommandTimeout(e: unknown): boolean {
  return e instanceof Error && e.message === COMMAND_TIMED_OUT;
}
