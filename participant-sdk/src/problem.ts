import { ERROR_CODES, ErrorCode, TwopcError, isTwopcError } from './errors';
import type { Problem } from './wire';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

// Retryable trouble is 503: the caller (a coordinator retrying phase 2, a
// client) may try again. Conflicts that a retry cannot fix are 409.
const STATUS: Readonly<Record<ErrorCode, number>> = {
  'invalid-input': 400,
  'invalid-config': 500,
  unauthorized: 401,
  'not-found': 404,
  'state-conflict': 409,
  'transaction-aborted': 409,
  'heuristic-hazard': 409,
  'payload-too-large': 413,
  'outcome-unknown': 503,
  'participant-unavailable': 503,
  'coordinator-unavailable': 503,
  'prepared-transactions-disabled': 503,
  'log-corrupt': 503,
  'log-locked': 503,
  'log-unavailable': 503,
  'shutting-down': 503,
  fenced: 503,
  'owner-unavailable': 503,
  'over-capacity': 503,
};

/**
 * The one mapping from error codes to HTTP statuses, for every twopc HTTP
 * surface (the SDK's router, and the coordinator's API may use it too).
 *
 * @example
 * res.status(httpStatusOf('invalid-input')) // 400
 */
export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code];
}

/**
 * RFC 9457 problem details for an error. Anything that is not a TwopcError
 * is reported as `outcome-unknown` (503) without its message: it is a bug or
 * an unexpected failure, and its text may hold internals.
 *
 * @example
 * const problem = problemOf(new TwopcError('invalid-input', 'gid: must be ...', { field: 'gid' }));
 * res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
 */
export function problemOf(error: unknown): Problem {
  const e = isTwopcError(error) ? error : new TwopcError('outcome-unknown', 'unexpected failure; the outcome is unknown, retry');
  const field = typeof e.details.field === 'string' ? e.details.field : undefined;
  return {
    type: `urn:twopc:problem:${e.code}`,
    title: e.code,
    status: httpStatusOf(e.code),
    code: e.code,
    detail: e.message,
    ...(field ? { field } : {}),
  };
}

/** A TwopcError for a problem answer (unknown codes become `fallback`). */
export function errorFromProblem(problem: Problem, fallback: ErrorCode, details: Record<string, unknown> = {}): TwopcError {
  const code = (ERROR_CODES as readonly string[]).includes(problem.code) ? (problem.code as ErrorCode) : fallback;
  return new TwopcError(code, problem.detail ?? problem.title, { ...details, status: problem.status, problemCode: problem.code, ...(problem.field ? { field: problem.field } : {}) });
}
