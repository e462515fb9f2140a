/**
 * Which coordinator calls may be repeated, and where. Several coordinator
 * instances share one decision log (SPEC §7); any of them answers any call,
 * relaying it to the instance that owns the transaction. What decides
 * whether a call may go to another instance is what a repeat can do:
 *
 * - `by-id` calls (status GET, commit, abort) are repeated anywhere: a GET
 *   reads, and commit and abort are idempotent by transaction id (every
 *   instance relays them to the owner, which answers the first outcome).
 * - `keyed` calls (begin, enlist) are not idempotent by themselves: a second
 *   begin begins a second transaction, a second enlist registers a second
 *   branch. They carry an Idempotency-Key, but an instance keeps its keys in
 *   its own memory. So once such a call may have reached an instance, it is
 *   only ever repeated there, under the same key (which then answers the
 *   first answer). It goes elsewhere only when the instance surely did not
 *   act on it: no connection was made, or it answered one of the 503s an
 *   instance gives before doing any work (`REFUSED_BEFORE_WORK`).
 */
export type CallKind = 'by-id' | 'keyed';

/** An answer of the coordinator: its status, problem code (for problem answers), body, and Retry-After. */
export interface Answer {
  status: number;
  problem: boolean;
  body: unknown;
  /** Retry-After of the answer, in milliseconds. */
  retryAfterMs?: number;
}

/** What one attempt got. `not-sent`: no connection was made, so the request never left. `lost`: it may have arrived. */
export type Attempt = { kind: 'answer'; answer: Answer } | { kind: 'not-sent'; error: unknown } | { kind: 'lost'; error: unknown };

/** After an attempt: return its answer, or try again on the next URL, or again on the same URL only. */
export type NextStep = 'done' | 'next-url' | 'same-url';

// 503s an instance answers from its gate, before reading the call: recovering or without a lease
// (`not-ready`), stopping, or its lease taken over (`fenced`: the store refuses its writes atomically).
const REFUSED_BEFORE_WORK = new Set(['not-ready', 'shutting-down', 'fenced']);

export function nextStep(kind: CallKind, attempt: Attempt): NextStep {
  if (attempt.kind === 'not-sent') return 'next-url';
  if (attempt.kind === 'lost') return kind === 'by-id' ? 'next-url' : 'same-url';
  const { answer } = attempt;
  if (!isUnavailable(answer)) return 'done';
  if (kind === 'by-id') return 'next-url';
  return REFUSED_BEFORE_WORK.has(problemCode(answer) ?? '') ? 'next-url' : 'same-url';
}

/**
 * "This instance cannot answer now": a 503 (an instance not ready, fenced,
 * or whose transaction's owner is unreachable: `owner-unavailable`), or a
 * proxy's 502/504. A 503 `outcome-unknown` is not: it is the coordinator's
 * answer about the transaction (a one-phase commit whose outcome is unknown),
 * which a repeat elsewhere would only relay again.
 */
function isUnavailable(answer: Answer): boolean {
  if (answer.status === 502 || answer.status === 504) return true;
  return answer.status === 503 && problemCode(answer) !== 'outcome-unknown';
}

function problemCode(answer: Answer): string | undefined {
  if (!answer.problem || typeof answer.body !== 'object' || answer.body === null) return undefined;
  const { code } = answer.body as { code?: unknown };
  return typeof code === 'string' ? code : undefined;
}

/** Retry-After (seconds, or an HTTP date) in milliseconds; undefined when absent or malformed. */
export function parseRetryAfter(value: unknown, now = Date.now()): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
