import { backoffDelay, sleep } from '../../engine/ports/backoff';

/** How long a shared store keeps retrying a write or read through a lost connection. */
export interface RetryPolicy {
  /** Gives up this long after the first attempt. */
  deadlineMs: number;
  /** First backoff; doubles up to `capDelayMs`. */
  baseDelayMs: number;
  capDelayMs: number;
}

/** How long one attempt at a shared store's call may go unanswered before its connection is given up. */
export const DEFAULT_CALL_TIMEOUT_MS = 5_000;

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ deadlineMs: 15_000, baseDelayMs: 25, capDelayMs: 1_000 });

/**
 * Runs `attempt` until it succeeds, fails with an error `retryable` calls
 * final, or `policy.deadlineMs` has passed; then rejects with
 * `giveUp(lastError, attempts)`. Only for attempts that are safe to repeat:
 * the callers pass idempotent compare-and-set writes and reads.
 */
export async function retryWrite<T>(
  attempt: () => Promise<T>,
  retryable: (e: unknown) => boolean,
  policy: RetryPolicy,
  giveUp: (lastError: unknown, attempts: number) => Error,
): Promise<T> {
  const deadline = Date.now() + policy.deadlineMs;
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      const delay = backoffDelay(n, policy.baseDelayMs, policy.capDelayMs);
      if (!retryable(e) || Date.now() + delay > deadline) throw giveUp(e, n + 1);
      await sleep(delay);
    }
  }
}
